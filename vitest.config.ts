import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Native kernels use both cores; two test files at once is the most a 2-core CI machine wants.
    maxWorkers: 2,
  },
});

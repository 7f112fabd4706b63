/**
 * The backend the kernel, operator and model tests exercise: `native` by default; `npm run test:gpu`
 * sets TABRECALL_TEST_BACKEND=cuda, so the same tests check the GPU against the same references.
 */
export const BACKEND = process.env.TABRECALL_TEST_BACKEND ?? 'native';

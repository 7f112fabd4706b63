/** Where a number was measured: code version, runtime, hardware. */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { createRequire } from 'node:module';
import type { Fingerprint } from './schema.js';

function git(args: string[]): string | null {
  try {
    return execFileSync('git', args, { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    return null;
  }
}

function gpuName(): string | null {
  try {
    const out = execFileSync('nvidia-smi', ['--query-gpu=name,driver_version,memory.total', '--format=csv,noheader'], {
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 5000,
    });
    return out.toString().trim().split('\n')[0] ?? null;
  } catch {
    return null;
  }
}

export function fingerprint(backend: string, backendInfo: Record<string, string> = {}): Fingerprint {
  const require = createRequire(import.meta.url);
  let tfjs = 'unknown';
  try {
    tfjs = (require('@tensorflow/tfjs-core/package.json') as { version: string }).version;
  } catch {
    /* bundled builds carry no package.json */
  }
  const sha = process.env.TABRECALL_GIT_SHA ?? git(['rev-parse', 'HEAD']) ?? process.env.TABRECALL_BUNDLE_SHA ?? 'unknown';
  const dirty = process.env.TABRECALL_GIT_SHA ? false : (git(['status', '--porcelain', '--untracked-files=no']) ?? '') !== '';
  return {
    gitSha: sha,
    gitDirty: dirty,
    node: process.version,
    tfjs,
    backend,
    backendInfo,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    gpu: gpuName(),
    hostname: os.hostname(),
  };
}

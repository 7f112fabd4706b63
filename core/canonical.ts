/** Canonical JSON (sorted keys) and its hash: equal configurations give equal ids. */
import { createHash } from 'node:crypto';

export function canonical(x: unknown): string {
  if (Array.isArray(x)) return `[${x.map(canonical).join(',')}]`;
  if (x && typeof x === 'object') {
    return `{${Object.keys(x).sort().map((k) => `${JSON.stringify(k)}:${canonical((x as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(x);
}

export function hashId(x: unknown): string {
  return createHash('sha256').update(canonical(x)).digest('hex').slice(0, 16);
}

/** Parameter validation helpers: every bad input names the field and what is allowed. */
export class ParamError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'ParamError';
  }
}

export function intParam(where: string, field: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ParamError(`${where}.${field}`, `must be an integer in [${min}, ${max}], got ${JSON.stringify(value)}`);
  }
  return value;
}

export function numParam(where: string, field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw new ParamError(`${where}.${field}`, `must be a number in [${min}, ${max}], got ${JSON.stringify(value)}`);
  }
  return value;
}

export function boolParam(where: string, field: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new ParamError(`${where}.${field}`, `must be true or false, got ${JSON.stringify(value)}`);
  return value;
}

export function enumParam<T extends string>(where: string, field: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new ParamError(`${where}.${field}`, `must be one of ${allowed.join(', ')}; got ${JSON.stringify(value)}`);
  }
  return value as T;
}

/** Reject keys a config does not know, so typos do not silently fall back to defaults. */
export function rejectUnknown(where: string, given: Record<string, unknown>, known: readonly string[]): void {
  for (const k of Object.keys(given)) {
    if (!known.includes(k)) throw new ParamError(`${where}.${k}`, `unknown parameter; allowed: ${known.join(', ')}`);
  }
}

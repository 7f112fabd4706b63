/** Parameter validation helpers: every bad input names the field and what is allowed. */
export class ParamError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'ParamError';
    this.detail = message;
  }

  /** The message without its field, for an error that wraps this one under another field. */
  readonly detail: string;
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

/** One field of a settings object: what values it may take. */
export type FieldSpec =
  | { int: [number, number?] }
  | { num: [number, number]; above?: number }
  | { bool: true }
  | { oneOf: readonly string[] }
  | { str: true }
  | { ints: [number, number?]; empty?: true }
  | { each: readonly string[] }
  | { list: true }
  | { object: true };

/**
 * Check a settings object against its fields: unknown keys are rejected with the allowed list,
 * numbers range-checked, every error names `where.field`. Absent keys are fine (defaults apply).
 */
export function checkFields(where: string, given: unknown, spec: Record<string, FieldSpec>): Record<string, unknown> {
  if (!given || typeof given !== 'object' || Array.isArray(given)) throw new ParamError(where, `must be an object with keys among: ${Object.keys(spec).join(', ')}`);
  const g = given as Record<string, unknown>;
  rejectUnknown(where, g, Object.keys(spec));
  for (const [k, f] of Object.entries(spec)) {
    const v = g[k];
    if (v === undefined) continue;
    if ('int' in f) intParam(where, k, v, f.int[0], f.int[1]);
    else if ('num' in f) {
      numParam(where, k, v, f.num[0], f.num[1]);
      if (f.above !== undefined && !((v as number) > f.above)) throw new ParamError(`${where}.${k}`, `must be greater than ${f.above}, got ${JSON.stringify(v)}`);
    } else if ('bool' in f) boolParam(where, k, v);
    else if ('oneOf' in f) enumParam(where, k, v, f.oneOf);
    else if ('str' in f) {
      if (typeof v !== 'string') throw new ParamError(`${where}.${k}`, `must be a string, got ${JSON.stringify(v)}`);
    } else if ('ints' in f) {
      if (!Array.isArray(v) || (v.length === 0 && !f.empty)) throw new ParamError(`${where}.${k}`, `must be a non-empty list of integers in [${f.ints[0]}, ${f.ints[1] ?? Number.MAX_SAFE_INTEGER}], got ${JSON.stringify(v)}`);
      v.forEach((x, i) => intParam(`${where}.${k}`, String(i), x, f.ints[0], f.ints[1]));
    } else if ('each' in f) {
      if (!Array.isArray(v)) throw new ParamError(`${where}.${k}`, `must be a list of: ${f.each.join(', ')}; got ${JSON.stringify(v)}`);
      v.forEach((x, i) => enumParam(`${where}.${k}`, String(i), x, f.each));
    } else if ('list' in f) {
      if (!Array.isArray(v)) throw new ParamError(`${where}.${k}`, `must be a list, got ${JSON.stringify(v)}`);
    } else if ('object' in f) {
      if (!v || typeof v !== 'object' || Array.isArray(v)) throw new ParamError(`${where}.${k}`, `must be an object, got ${JSON.stringify(v)}`);
    }
  }
  return g;
}

/**
 * External evaluation sets in Zoology's format: a JSON object `{ "inputs": [[...], ...], "labels":
 * [[...], ...] }` (optionally gzip-compressed, detected by its magic bytes): inputs are token ids,
 * labels the next-token targets at the same positions, -100 where a position is not scored. This is
 * what Zoology's data segments hold (`inputs = seq[:-1]`, `labels = seq[1:]` with unscored targets
 * set to -100), so a set exported from Zoology (or any other harness) scores here unchanged.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { ParamError } from '../core/params.js';
import { IGNORE_INDEX, type TokenBatch } from './types.js';

export interface EvalFile {
  path: string;
  sha256: string;
  batch: TokenBatch;
}

/** Read and check an eval file against the model it will score (vocabulary size, longest length). */
export function readEvalFile(path: string, model: { vocabSize: number; maxLen: number }): EvalFile {
  const w = '--eval-file';
  if (!existsSync(path)) throw new ParamError(w, `no file at ${JSON.stringify(path)}`);
  let raw: Buffer = readFileSync(path);
  const sha256 = createHash('sha256').update(raw).digest('hex');
  if (raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      raw = gunzipSync(raw);
    } catch (e) {
      throw new ParamError(w, `${path}: gzip data is corrupt (${(e as Error).message})`);
    }
  }
  let doc: unknown;
  try {
    doc = JSON.parse(raw.toString('utf8'));
  } catch (e) {
    throw new ParamError(w, `${path}: not valid JSON (${(e as Error).message})`);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new ParamError(w, `${path}: must be a JSON object with "inputs" and "labels"`);
  const { inputs, labels } = doc as { inputs?: unknown; labels?: unknown };
  const rows = (name: string, x: unknown): number[][] => {
    if (!Array.isArray(x) || x.length === 0) throw new ParamError(`${w}.${name}`, `${path}: must be a non-empty array of token rows`);
    return x.map((r, i) => {
      if (!Array.isArray(r)) throw new ParamError(`${w}.${name}[${i}]`, `${path}: must be an array of integers`);
      return r as number[];
    });
  };
  const X = rows('inputs', inputs);
  const Y = rows('labels', labels);
  if (X.length !== Y.length) throw new ParamError(`${w}.labels`, `${path}: ${Y.length} rows, inputs has ${X.length}`);
  const L = X[0]!.length;
  if (L < 1) throw new ParamError(`${w}.inputs[0]`, `${path}: rows must not be empty`);
  if (L > model.maxLen) throw new ParamError(`${w}.inputs`, `${path}: sequences of length ${L}, the model was built for at most ${model.maxLen}`);
  const n = X.length;
  const inp = new Int32Array(n * L);
  const lab = new Int32Array(n * L);
  let scored = 0;
  for (let i = 0; i < n; i++) {
    if (X[i]!.length !== L) throw new ParamError(`${w}.inputs[${i}]`, `${path}: length ${X[i]!.length}, row 0 has ${L} (all rows must have one length)`);
    if (Y[i]!.length !== L) throw new ParamError(`${w}.labels[${i}]`, `${path}: length ${Y[i]!.length}, its inputs row has ${L}`);
    for (let t = 0; t < L; t++) {
      const x = X[i]![t]!, y = Y[i]![t]!;
      if (!Number.isInteger(x) || x < 0 || x >= model.vocabSize) throw new ParamError(`${w}.inputs[${i}][${t}]`, `${path}: token ${JSON.stringify(x)} outside the model's vocabulary [0, ${model.vocabSize})`);
      if (!Number.isInteger(y) || (y !== IGNORE_INDEX && (y < 0 || y >= model.vocabSize))) {
        throw new ParamError(`${w}.labels[${i}][${t}]`, `${path}: label ${JSON.stringify(y)} must be ${IGNORE_INDEX} (ignored) or a token in [0, ${model.vocabSize})`);
      }
      inp[i * L + t] = x;
      lab[i * L + t] = y;
      if (y !== IGNORE_INDEX) scored++;
    }
  }
  if (scored === 0) throw new ParamError(`${w}.labels`, `${path}: every label is ${IGNORE_INDEX}; nothing would be scored`);
  return { path, sha256, batch: { inputs: inp, labels: lab, n, seqLen: L } };
}

/** A batch as a Zoology-format document (for exporting our sets and for tests). */
export function toEvalDoc(b: TokenBatch): { inputs: number[][]; labels: number[][] } {
  const rows = (a: Int32Array) => Array.from({ length: b.n }, (_, i) => Array.from(a.subarray(i * b.seqLen, (i + 1) * b.seqLen)));
  return { inputs: rows(b.inputs), labels: rows(b.labels) };
}

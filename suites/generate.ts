/**
 * Needle answers scored by generation: the haystack is prefilled into a KV cache and the question's
 * last `queryTokens` tokens (NIAH: the query marker and the key) are decoded through the decode method,
 * as a question arriving after a cached document is, so the method decides the first answer too (with
 * the whole prompt prefilled, a one-token answer would never see the method). Then the decoder runs
 * token by token; after an answer position its own argmax is
 * fed back (generation) or the true token (teacher forcing through the same decoder), and inputs
 * between answers (multi-query's next "Q key") are given. An example is right when every answer is.
 * With one answer token per example the two walks are the same computation, so it runs once.
 * Models without a KV cache (Combiner, SeqBoat; any model off native / cuda) decode by recomputing
 * the prefix each step (models/decoder.ts RecomputeDecoder): the same scores, no decode speed.
 */
import type { SequenceModel } from '../models/types.js';
import { argmaxRows, decoderFor } from '../models/decoder.js';
import type { DecodeMethod } from '../kernels/decode/methods.js';
import type { KvFormat } from '../kernels/decode/types.js';
import { IGNORE_INDEX, type TokenBatch } from '../datasets/types.js';

export interface DecodeScore {
  /** Examples with every answer right when answers are generated (fed back). */
  generatedExactMatch: number;
  /** The same with the true answers fed back (teacher forcing through the cached decoder). */
  teacherExactMatch: number;
  examples: number;
  /** Answer tokens per example (max). */
  answerTokens: number;
}

export interface DecodeScoreOptions {
  batch: number;
  format?: KvFormat;
  /** A fresh method per decoder (methods keep per-layer state such as reused selections). */
  method?: () => DecodeMethod;
  /** Prompt tokens before the first answer decoded step by step (default 2: NIAH's "Q key"). */
  queryTokens?: number;
}

/**
 * The decoder's prediction at every scored position of rows start..start+n ([n * L], -1 elsewhere),
 * with the answers fed back (generate) or the true tokens (teacher forcing).
 */
export function decodePredictions(model: SequenceModel, b: TokenBatch, start: number, n: number, generate: boolean, o: DecodeScoreOptions): Int32Array {
  const L = b.seqLen;
  const lab = (e: number, t: number) => b.labels[(start + e) * L + t]!;
  const inp = (e: number, t: number) => b.inputs[(start + e) * L + t]!;
  let first = L, last = -1;
  for (let e = 0; e < n; e++) for (let t = 0; t < L; t++) if (lab(e, t) !== IGNORE_INDEX) first = Math.min(first, t), last = Math.max(last, t);
  const out = new Int32Array(n * L).fill(-1);
  if (last < 0) return out;
  const method = o.method?.();
  const dec = decoderFor(model, { batch: n, cap: last + 1, format: o.format, ...(method ? { method } : {}) });
  try {
    const p = Math.max(1, first + 1 - (o.queryTokens ?? 2));
    const prompt = new Int32Array(n * p);
    for (let e = 0; e < n; e++) for (let t = 0; t < p; t++) prompt[e * p + t] = inp(e, t);
    let pred = argmaxRows(dec.prefill(prompt, p));
    for (let t = p - 1; ; t++) {
      for (let e = 0; e < n; e++) if (lab(e, t) !== IGNORE_INDEX) out[e * L + t] = pred[e]!;
      if (t === last) break;
      const next = Int32Array.from({ length: n }, (_, e) => (generate && lab(e, t) !== IGNORE_INDEX ? pred[e]! : inp(e, t + 1)));
      pred = argmaxRows(dec.step(next));
    }
  } finally {
    dec.dispose();
    method?.dispose();
  }
  return out;
}

function walk(model: SequenceModel, b: TokenBatch, start: number, n: number, generate: boolean, o: DecodeScoreOptions): Uint8Array {
  const L = b.seqLen;
  const pred = decodePredictions(model, b, start, n, generate, o);
  const ok = new Uint8Array(n).fill(1);
  for (let e = 0; e < n; e++) for (let t = 0; t < L; t++) if (b.labels[(start + e) * L + t] !== IGNORE_INDEX && pred[e * L + t] !== b.labels[(start + e) * L + t]) ok[e] = 0;
  return ok;
}

export function scoreByDecoding(model: SequenceModel, b: TokenBatch, o: DecodeScoreOptions): DecodeScore {
  let answerTokens = 0;
  for (let e = 0; e < b.n; e++) {
    let c = 0;
    for (let t = 0; t < b.seqLen; t++) if (b.labels[e * b.seqLen + t] !== IGNORE_INDEX) c++;
    answerTokens = Math.max(answerTokens, c);
  }
  let gen = 0, teach = 0;
  for (let start = 0; start < b.n; start += o.batch) {
    const n = Math.min(o.batch, b.n - start);
    const g = walk(model, b, start, n, true, o);
    const t = answerTokens > 1 ? walk(model, b, start, n, false, o) : g;
    gen += g.reduce((s, x) => s + x, 0);
    teach += t.reduce((s, x) => s + x, 0);
  }
  return { generatedExactMatch: gen / b.n, teacherExactMatch: teach / b.n, examples: b.n, answerTokens };
}

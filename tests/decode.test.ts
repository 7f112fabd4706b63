/**
 * Decoding (kernels/decode, models/decoder.ts) on the backend under test (native; cuda in test:gpu):
 * the split-KV kernel against float64 softmax attention over the same tokens (dense and selected: 2e-5
 * absolute + 2e-4 relative in fp32; bf16 caches against the reference over bf16-rounded keys and
 * values, 2e-3), the page bounds, top-k and label scores exactly (same float32 products; 1e-5), every
 * method's step against the reference over what that method must select (Quest and LServe: the pages
 * with the highest bound; Double Sparsity: the top tokens on the label channels; Mustafar: dense
 * attention over the pruned cache), and cached generation against the full forward at every position
 * (logits within 1e-4 absolute + 1e-4 relative) for dense, window and BigBird transformers.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../kernels/backend.js';
import { Rng } from '../core/rng.js';
import { BACKEND } from './under-test.js';
import { LayerCache } from '../kernels/decode/kv-cache.js';
import { decodeAttn, labelScores, topkRows } from '../kernels/decode/ops.js';
import { makeDecodeMethod } from '../kernels/decode/methods.js';
import { refDecode, refPageMinMax, refPrune, refQuestBound, refTopk, type HostSelection } from '../kernels/decode/reference.js';
import { Transformer, TRANSFORMER_DEFAULTS } from '../models/transformer.js';
import { Decoder, argmaxRows } from '../models/decoder.js';
import { LAYOUT_DEFAULTS } from '../kernels/attention.js';

const close = (a: ArrayLike<number>, b: ArrayLike<number>, abs: number, rel: number) => {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) if (!(Math.abs(a[i]! - b[i]!) <= abs + rel * Math.abs(b[i]!))) throw new Error(`index ${i}: ${a[i]} vs ${b[i]}`);
};
const normals = (r: Rng, n: number, s = 1) => Float32Array.from({ length: n }, () => r.normal() * s);
const bf16 = (x: Float32Array) => {
  const u = new Uint32Array(x.buffer.slice(0));
  for (let i = 0; i < u.length; i++) u[i] = ((u[i]! + 0x7fff + ((u[i]! >> 16) & 1)) >>> 16) << 16;
  return new Float32Array(u.buffer);
};

beforeAll(async () => {
  await useBackend(BACKEND);
});

/** A cache of `len` random tokens, and the same keys/values on the host [rows, cap, D]. */
function filled(B: number, H: number, D: number, cap: number, len: number, seed: number, extras = {}, format: 'fp32' | 'bf16' = 'fp32') {
  const r = new Rng(seed);
  const k = normals(r, B * H * len * D, 1.5), v = normals(r, B * H * len * D);
  const cache = new LayerCache({ B, H, D, cap, format }, extras);
  // two appends (a prefill and one step's worth) exercise the in-place offset
  const cut = len - 1;
  const part = (x: Float32Array, a: number, n: number) => {
    const o = new Float32Array(B * H * n * D);
    for (let row = 0; row < B * H; row++) o.set(x.subarray((row * len + a) * D, (row * len + a + n) * D), row * n * D);
    return tf.tensor4d(o, [B, H, n, D]);
  };
  for (const [a, n] of [[0, cut], [cut, 1]] as const) {
    const kt = part(k, a, n), vt = part(v, a, n);
    cache.append(kt, vt);
    tf.dispose([kt, vt]);
  }
  const host = (x: Float32Array) => {
    const o = new Float32Array(B * H * cap * D);
    for (let row = 0; row < B * H; row++) o.set(x.subarray(row * len * D, (row + 1) * len * D), row * cap * D);
    return o;
  };
  return { cache, K: host(k), V: host(v), q: normals(r, B * H * D, 1.5) };
}

describe('decode attention kernel', () => {
  for (const D of [32, 64, 128]) {
    it(`dense, D=${D}: equals softmax attention over [0, len)`, () => {
      const B = 2, H = 3, cap = 700, len = 613;
      const { cache, K, V, q } = filled(B, H, D, cap, len, D);
      const qt = tf.tensor3d(q, [B, H, D]);
      const o = decodeAttn({ q: qt, k: cache.k!, v: cache.v!, fmt: 'fp32', cap, len, D, scale: 1 / Math.sqrt(D) });
      close(o.dataSync(), refDecode(q, K, V, B * H, H, D, cap, len, 1 / Math.sqrt(D)), 2e-5, 2e-4);
      tf.dispose([qt, o]);
      cache.dispose();
    });
  }

  it('selected pages below each head\'s tail plus the tail: equals attention over exactly those tokens', () => {
    const B = 2, H = 2, D = 64, cap = 520, len = 517, page = 16, maxp = 9;
    const { cache, K, V, q } = filled(B, H, D, cap, len, 7);
    const r = new Rng(3);
    const pages = new Int32Array(B * H * maxp).fill(-1), counts = new Int32Array(B * H);
    for (let row = 0; row < B * H; row++) {
      const n = r.int(0, maxp + 1);
      const pick = r.sampleDistinct(0, Math.ceil(len / page), n).sort((a, b) => a - b);
      pages.set(pick, row * maxp);
      counts[row] = n;
    }
    const tailFrom = Int32Array.from([400, 509]);
    const sel: HostSelection = { page, maxp, pages, counts, tailFrom };
    const t = [tf.tensor3d(q, [B, H, D]), tf.tensor2d(pages, [B * H, maxp], 'int32'), tf.tensor1d(counts, 'int32'), tf.tensor1d(tailFrom, 'int32')] as const;
    const o = decodeAttn({ q: t[0], k: cache.k!, v: cache.v!, fmt: 'fp32', cap, len, D, scale: 0.125, sel: { pages: t[1], counts: t[2], tailFrom: t[3], page, maxTail: 509, minTail: 400 } });
    close(o.dataSync(), refDecode(q, K, V, B * H, H, D, cap, len, 0.125, sel), 2e-5, 2e-4);
    tf.dispose([...t, o]);
    cache.dispose();
  });

  it.runIf(BACKEND === 'cuda')('bf16 cache: equals the reference over bf16-rounded keys and values', () => {
    const B = 16, H = 2, D = 128, cap = 4200, len = 4100;
    const { cache, K, V, q } = filled(B, H, D, cap, len, 11, {}, 'bf16');
    const qt = tf.tensor3d(q, [B, H, D]);
    const o = decodeAttn({ q: qt, k: cache.k!, v: cache.v!, fmt: 'bf16', cap, len, D, scale: 1 / Math.sqrt(D) });
    close(o.dataSync(), refDecode(q, bf16(K), bf16(V), B * H, H, D, cap, len, 1 / Math.sqrt(D)), 2e-3, 2e-3);
    tf.dispose([qt, o]);
    cache.dispose();
  });
});

describe('selection kernels', () => {
  it('top-k per row: the k largest, ties to the lower index, -inf never, ascending', () => {
    const rows = 5, n = 3000, k = 37;
    const r = new Rng(5);
    const s = Float32Array.from({ length: rows * n }, () => Math.round(r.normal() * 4) / 4); // many ties
    for (let j = 0; j < n; j++) s[3 * n + j] = j < 20 ? j : -Infinity; // a row with fewer valid entries than k
    const t = tf.tensor2d(s, [rows, n]);
    const got = topkRows(t, k);
    const want = refTopk(s, rows, n, k);
    expect(Array.from(got.counts.dataSync())).toEqual(Array.from(want.counts));
    expect(Array.from(got.idx.dataSync())).toEqual(Array.from(want.idx));
    tf.dispose([t, got.idx, got.counts]);
  });

  it('page min/max follow every append; label scores equal q . k on the label channels', () => {
    const B = 1, H = 2, D = 64, cap = 300, len = 290, page = 16;
    const channels = tf.tensor2d(Int32Array.from([3, 9, 60, 1, 0, 2, 33, 40]), [H, 4], 'int32');
    const { cache, K, q } = filled(B, H, D, cap, len, 9, { pageStats: page, labelChannels: channels });
    const ref = refPageMinMax(K, B * H, D, cap, page, len);
    const capPages = Math.ceil(cap / page), nP = Math.ceil(len / page);
    const got = { kmin: cache.pages!.kmin.dataSync(), kmax: cache.pages!.kmax.dataSync() };
    for (let row = 0; row < B * H; row++) for (let i = 0; i < nP * D; i++) {
      expect(got.kmin[row * capPages * D + i]).toBe(ref.kmin[row * capPages * D + i]);
      expect(got.kmax[row * capPages * D + i]).toBe(ref.kmax[row * capPages * D + i]);
    }
    const qt = tf.tensor3d(q, [B, H, D]);
    const s = labelScores(qt, cache.label!.store, channels, cap, len, 280).dataSync();
    const ch = channels.arraySync();
    for (let row = 0; row < B * H; row++) for (let t = 0; t < len; t++) {
      const want = t >= 280 ? -Infinity : ch[row % H]!.reduce((a, c) => a + q[row * D + c]! * K[(row * cap + t) * D + c]!, 0);
      if (t >= 280) expect(s[row * len + t]).toBe(-Infinity);
      else expect(Math.abs(s[row * len + t]! - want)).toBeLessThan(1e-5 + 1e-5 * Math.abs(want));
    }
    tf.dispose([qt, channels]);
    cache.dispose();
  });
});

describe('decode methods against their references', () => {
  const B = 2, H = 2, D = 64, cap = 600, len = 577, scale = 0.125;
  const run = (name: Parameters<typeof makeDecodeMethod>[0], budget: number, cal = {}, step = 0) => {
    const m = makeDecodeMethod(name, { budget }, D, cal);
    const { cache, K, V, q } = filled(B, H, D, cap, len, 21, m.extras(0, H));
    const qt = tf.tensor3d(q, [B, H, D]);
    const o = m.attend(qt, cache, { layer: 0, len, step }, scale);
    const got = o.dataSync().slice();
    tf.dispose([qt, o]);
    m.dispose();
    cache.dispose();
    return { got, K, V, q };
  };
  const pagesByBound = (q: Float32Array, K: Float32Array, row: number, n: number, page: number) => {
    const { kmin, kmax } = refPageMinMax(K, B * H, D, cap, page, len);
    const tailPage = Math.floor((len - 1) / page), capPages = Math.ceil(cap / page);
    const bound = Array.from({ length: tailPage }, (_, p) => refQuestBound(q, kmin, kmax, row, p, D, capPages));
    return bound.map((b, p) => [b, p] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, n).map(([, p]) => p).sort((a, b) => a - b);
  };
  const selOf = (rows: number[][], page: number, tailFrom: number[]): HostSelection => {
    const maxp = Math.max(1, ...rows.map((r) => r.length));
    const pages = new Int32Array(rows.length * maxp).fill(-1);
    rows.forEach((r, i) => pages.set(r, i * maxp));
    return { page, maxp, pages, counts: Int32Array.from(rows.map((r) => r.length)), tailFrom: Int32Array.from(tailFrom) };
  };

  it('quest: the pages with the highest bound (budget/page - 1 of them) + the current page', () => {
    const { got, K, V, q } = run('quest', 128);
    const rows = Array.from({ length: B * H }, (_, row) => pagesByBound(q, K, row, 7, 16));
    const tail = Math.floor((len - 1) / 16) * 16;
    close(got, refDecode(q, K, V, B * H, H, D, cap, len, scale, selOf(rows, 16, [tail, tail])), 2e-5, 2e-4);
  });

  it('lserve: streaming heads read sink + local; the others the highest-bound pages', () => {
    const { got, K, V, q } = run('lserve', 128, { streamingHeads: [[true, false]] });
    const tail = Math.floor((len - 1) / 16) * 16;
    const rows = Array.from({ length: B * H }, (_, row) => (row % H === 0 ? [0] : pagesByBound(q, K, row, 7, 16)));
    close(got, refDecode(q, K, V, B * H, H, D, cap, len, scale, selOf(rows, 16, [len - (128 - 16), tail])), 2e-5, 2e-4);
  });

  it('double sparsity: the top tokens by q . k on the label channels + the newest token', () => {
    const channels = [[[0, 5, 9, 12, 20, 31, 40, 63], [1, 2, 3, 4, 5, 6, 7, 8]]];
    const { got, K, V, q } = run('double-sparsity', 64, { labelChannels: channels });
    const rows = Array.from({ length: B * H }, (_, row) => {
      const ch = channels[0]![row % H]!;
      const s = Array.from({ length: len - 1 }, (_, t) => ch.reduce((a, c) => a + q[row * D + c]! * K[(row * cap + t) * D + c]!, 0));
      return s.map((x, t) => [x, t] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, 63).map(([, t]) => t).sort((a, b) => a - b);
    });
    close(got, refDecode(q, K, V, B * H, H, D, cap, len, scale, selOf(rows, 1, [len - 1, len - 1])), 2e-5, 2e-4);
  });

  for (const sparsity of [0.5, 0.7]) {
    it(`mustafar ${sparsity}: attention on the compressed cache equals dense attention over the pruned cache`, () => {
      const { got, K, V, q } = run('mustafar', sparsity);
      const keep = Math.round((1 - sparsity) * D);
      close(got, refDecode(q, refPrune(K, B * H * cap, D, keep), refPrune(V, B * H * cap, D, keep), B * H, H, D, cap, len, scale), 2e-5, 2e-4);
    });
  }

  it('streaming: sink + local window', () => {
    const { got, K, V, q } = run('streaming', 96);
    close(got, refDecode(q, K, V, B * H, H, D, cap, len, scale, selOf(Array.from({ length: B * H }, () => [0]), 16, [len - 80, len - 80])), 2e-5, 2e-4);
  });
});

describe('KV-cached decoding equals the full forward', () => {
  const cases = [
    { name: 'dense, RoPE, short conv', params: { shortConv: 3 }, layout: undefined },
    { name: 'dense, learned positions', params: { positions: 'learned' as const }, layout: undefined },
    { name: 'window', params: {}, layout: { ...LAYOUT_DEFAULTS, kind: 'window' as const, block: 16, window: 11 } },
    { name: 'bigbird', params: {}, layout: { ...LAYOUT_DEFAULTS, kind: 'bigbird' as const, block: 16 } },
  ];
  for (const c of cases) {
    it(`${c.name}: logits at every generated position (prefill 37, then 60 steps, batch 3)`, () => {
      const vocab = 50, B = 3, P = 37, T = 97;
      const model = new Transformer('dense', { ...TRANSFORMER_DEFAULTS, dModel: 64, nHeads: 2, ...c.params }, { vocabSize: vocab, maxLen: 128, seed: 4 }, c.layout);
      const r = new Rng(8);
      const ids = Int32Array.from({ length: B * T }, () => r.int(1, vocab));
      const full = tf.tidy(() => model.head(tf.reshape(model.hidden(tf.tensor2d(ids, [B, T], 'int32')), [B * T, -1]) as tf.Tensor2D)).arraySync() as number[][];
      const dec = new Decoder(model, { batch: B, cap: T });
      const prompt = new Int32Array(B * P);
      for (let b = 0; b < B; b++) prompt.set(ids.subarray(b * T, b * T + P), b * P);
      const check = (logits: tf.Tensor2D, t: number) => {
        const got = logits.arraySync();
        for (let b = 0; b < B; b++) close(got[b]!, full[b * T + t]!, 1e-4, 1e-4);
        logits.dispose();
      };
      check(dec.prefill(prompt, P), P - 1);
      for (let t = P; t < T; t++) check(dec.step(Int32Array.from({ length: B }, (_, b) => ids[b * T + t]!)), t);
      expect(dec.len).toBe(T);
      dec.dispose();
      model.dispose();
    });
  }

  it('greedy generation feeds back the argmax', () => {
    const model = new Transformer('dense', { ...TRANSFORMER_DEFAULTS, dModel: 64, nHeads: 2 }, { vocabSize: 30, maxLen: 64, seed: 1 }, undefined);
    const dec = new Decoder(model, { batch: 1, cap: 40 });
    const seq = [5, 6, 7, 8];
    let next = argmaxRows(dec.prefill(Int32Array.from(seq), 4));
    for (let i = 0; i < 10; i++) {
      seq.push(next[0]!);
      next = argmaxRows(dec.step(next));
    }
    const full = tf.tidy(() => tf.argMax(model.head(tf.reshape(model.hidden(tf.tensor2d(Int32Array.from(seq), [1, seq.length], 'int32')), [seq.length, -1]) as tf.Tensor2D), 1).arraySync() as number[]);
    expect(full.slice(3, 13)).toEqual(seq.slice(4, 14));
    dec.dispose();
    model.dispose();
  });
});

import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../kernels/backend.js';
import { addSpeedups, kernelCases, measureKernelCase, KERNELS_DEFAULTS } from '../suites/kernels.js';
import { fingerprint } from '../reports/fingerprint.js';
import { renderLeaderboard } from '../reports/html.js';
import { SCHEMA_VERSION } from '../reports/schema.js';
import { validateSuite } from '../suites/grid.js';

const tiny = {
  ...KERNELS_DEFAULTS, backends: ['native'], B: 1, H: 2, D: 16, block: 16, lengths: [64], window: 16,
  bigbird: { windowBlocks: 1, globalBlocks: 1, randomBlocks: 1 }, densitySweep: { length: 64, randomBlocks: [1] },
  timeMs: 5, minSamples: 3,
};

describe('kernels suite', () => {
  it('expands cases per layout, impl and pass; skips fused where a backend has none', () => {
    const all = kernelCases(tiny, ['native', 'wasm'], new Set(['native']));
    expect(all.filter((c) => c.backend === 'wasm' && c.impl === 'fused')).toEqual([]);
    expect(new Set(all.map((c) => c.layoutName))).toEqual(new Set(['dense', 'window', 'bigbird', 'random', 'combiner-fixed', 'combiner-axial']));
    // 4 layouts x (fused, generic) x 2 passes, + 2 Combiner variants x fused x 2 passes.
    expect(all.filter((c) => c.backend === 'native').length).toBe(4 * 2 * 2 + 2 * 2);
    expect(all.filter((c) => c.backend === 'wasm' && c.layoutName.startsWith('combiner'))).toEqual([]);
  });

  it('measures records with effective FLOPs and speedups over dense, and the leaderboard plots them', async () => {
    await useBackend('native');
    const fp = fingerprint('native');
    const cases = kernelCases(tiny, ['native']).filter((c) => c.impl === 'fused' && c.pass === 'forward');
    const records = [];
    // the first case creates the shared random inputs; after it, no case may leave tensors behind
    // (each timed call's other outputs, e.g. the forward's lse, once leaked one allocation per call)
    records.push(await measureKernelCase('t', tiny, cases[0]!, fp));
    const live = tf.memory().numTensors;
    for (const c of cases.slice(1)) records.push(await measureKernelCase('t', tiny, c, fp));
    expect(tf.memory().numTensors).toBe(live);
    addSpeedups(records);
    const dense = records.find((r) => r.metrics.kernel!.layout === 'dense')!;
    const win = records.find((r) => r.metrics.kernel!.layout === 'window')!;
    expect(dense.metrics.kernel!.density).toBe(1);
    expect(dense.metrics.kernel!.flops).toBe(4 * 1 * 2 * 64 * 64 * 16);
    expect(win.metrics.kernel!.density).toBeLessThan(1);
    expect(win.metrics.kernel!.speedupVsDense).toBeCloseTo(dense.metrics.latency[0]!.medianMs / win.metrics.latency[0]!.medianMs, 10);
    expect(records.every((r) => r.metrics.accuracy === null && r.metrics.latency[0]!.samples >= 3)).toBe(true);
    const html = renderLeaderboard([{ path: 'k.json', report: { schemaVersion: SCHEMA_VERSION, suite: 't', createdAt: '', fingerprint: fp, records } }]);
    expect(html).toContain('Operator latency vs density');
    expect(html).toContain(`data-run-id="${win.runId}"`);
  });

  it('times the fused backward alone at 2.5x the forward FLOPs; names the allowed passes on a typo', async () => {
    await useBackend('native');
    const fp = fingerprint('native');
    const cfg = { ...tiny, passes: ['forward', 'backward'] as ('forward' | 'backward')[], combiner: false };
    const cases = kernelCases(cfg, ['native']).filter((c) => c.layoutName === 'dense');
    // the backward alone exists for the fused kernel only
    expect(cases.filter((c) => c.pass === 'backward').map((c) => c.impl)).toEqual(['fused']);
    const fwd = await measureKernelCase('t', cfg, cases.find((c) => c.pass === 'forward' && c.impl === 'fused')!, fp);
    const bwd = await measureKernelCase('t', cfg, cases.find((c) => c.pass === 'backward')!, fp);
    expect(bwd.metrics.kernel!.flops).toBe(2.5 * fwd.metrics.kernel!.flops);
    expect(bwd.metrics.kernel!.pass).toBe('backward');
    expect(bwd.metrics.latency[0]!.samples).toBeGreaterThanOrEqual(3);
    expect(() => kernelCases({ ...tiny, passes: ['fwd' as 'forward'] }, ['native'])).toThrow(/kernels\.passes: each must be one of forward, forward\+backward, backward/);
  });

  it('suite files must say which kind they are', () => {
    expect(() => validateSuite({ name: 'x', seeds: [0], kind: 'bogus', entries: [] }, 'x')).toThrow(/suite\.kind: must be one of train, kernels/);
    expect(() => validateSuite({ name: 'x', seeds: [0], kind: 'kernels', entries: [] }, 'x')).toThrow(/suite\.kernels: a kernels suite needs/);
  });
});

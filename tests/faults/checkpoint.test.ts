/**
 * Pretraining checkpoints are atomic as a whole: killed (SIGINT or SIGKILL) at any rename of a save,
 * the folder holds the previous complete checkpoint, and --resume ends bit-identical to a run never
 * interrupted (weights, optimizer, loss curve). Resume refuses changed settings; a changed data file is an error.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, filesUnder, killAtFault } from './harness.js';
import { loadCheckpoint } from '../../models/tabular/checkpoint.js';

const ARGS = ['--model', 'orion-msp', '--steps', '10', '--batch', '1', '--every', '5', '--backend', 'native'];
const PRIOR = ['--prior', '{"minRows":16,"maxRows":24,"maxFeatures":4}'];
const meta = (dir: string) => JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));

describe('pretrain checkpoints under kills', () => {
  const root = mkdtempSync(join(tmpdir(), 'tr-ckpt-kill-'));
  const whole = join(root, 'whole');
  it('an uninterrupted run (the reference)', () => {
    const r = cli('pretrain.ts', [...ARGS, ...PRIOR, '--out', whole]);
    expect(r.code, r.err).toBe(0);
    expect(meta(whole).step).toBe(10);
    expect(filesUnder(whole)).toEqual(['model.json', 'optimizer.s000000010.bin', 'weights.s000000010.bin']);
  });

  // The second save (step 10) is interrupted at each of its three renames.
  for (const point of ['weights\\.s.*\\.bin', 'optimizer\\.s.*\\.bin', 'model\\.json'])
    for (const signal of ['SIGINT', 'SIGKILL'] as const) {
      it(`${signal} at rename:${point}: the step-5 checkpoint stays whole, resume matches the reference`, async () => {
        const out = join(root, `${signal}-${point.replace(/\W/g, '')}`);
        const { paused } = await killAtFault('pretrain.ts', [...ARGS, ...PRIOR, '--out', out], `rename:${point}@2`, signal);
        expect(paused).toMatch(new RegExp(point));
        const m = meta(out);
        expect(m.step).toBe(5);
        // Loads (digests checked) and is the step-5 state: a later weights file next to it changes nothing.
        const c = loadCheckpoint(out);
        expect(c.meta.step).toBe(5);
        expect(c.optimizer?.t).toBe(5);
        c.net.vars.forEach((v) => v.dispose());
        const r = cli('pretrain.ts', [...ARGS, '--out', out, '--resume']);
        expect(r.code, r.err).toBe(0);
        expect(r.err).toMatch(/resuming orion-msp at step 5/);
        const a = meta(whole);
        const b = meta(out);
        expect(b.files).toEqual(a.files); // same names and sha256: bit-identical weights and optimizer state
        expect(b.lossCurve).toEqual(a.lossCurve);
        expect(b.lossWindow).toEqual(a.lossWindow);
        expect(filesUnder(out)).toEqual(filesUnder(whole)); // temp files and the step-5 files are gone
      });
    }

  it('--resume refuses a different --batch, --lr or --steps, naming the flag and both values', () => {
    for (const [flag, value] of [['--batch', '2'], ['--lr', '0.002'], ['--steps', '20']] as const) {
      const o: Record<string, string> = { '--model': 'orion-msp', '--steps': '10', '--batch': '1', '--every': '5', '--backend': 'native', '--out': whole, [flag]: value };
      const args = [...Object.entries(o).flat(), '--resume'];
      const r = cli('pretrain.ts', args);
      expect(r.code, `${flag}: ${r.err}`).toBe(2);
      expect(r.err.trim().split('\n')).toHaveLength(1);
      expect(r.err).toMatch(new RegExp(`${flag}: the checkpoint in .* was trained with ${flag} \\S+, not ${value.replace('.', '\\.')}`));
    }
  });

  it('a data file changed under model.json is an error naming the file, never a silent mix', () => {
    const out = join(root, 'changed');
    expect(cli('pretrain.ts', [...ARGS, ...PRIOR, '--out', out]).code).toBe(0);
    const w = join(out, meta(out).files.weights.name);
    const bytes = readFileSync(w);
    bytes[100] = bytes[100]! ^ 1;
    writeFileSync(w, bytes);
    const r = cli('pretrain.ts', [...ARGS, '--out', out, '--resume']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/checkpoint\.files\.weights: .*weights\.s000000010\.bin: sha256 does not match model\.json/);
  });
});

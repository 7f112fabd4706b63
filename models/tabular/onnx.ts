/**
 * Bring your own model: any ONNX graph with the ICL contract runs through onnxruntime-node.
 * Contract: inputs `train_x` float32 [n_train, F], `train_y` int64 [n_train] (0..C-1),
 * `test_x` float32 [n_test, F] (preprocessed as in datasets/tabular/preprocess.ts); output
 * `test_logits` float32 [n_test, K] with K >= C: the adapter keeps the first C columns and applies
 * a softmax. Dimension names are free (dynamic axes), so one file serves every table.
 */
import { existsSync, readFileSync } from 'node:fs';
import { ParamError } from '../../core/params.js';
import type { IclTask } from '../../datasets/tabular/types.js';
import type { TabularModel } from './types.js';

type Ort = typeof import('onnxruntime-node');
let ort: Ort | undefined;
async function runtime(): Promise<Ort> {
  ort ??= await import('onnxruntime-node');
  return ort;
}

export const ONNX_INPUTS = ['train_x', 'train_y', 'test_x'] as const;
export const ONNX_OUTPUT = 'test_logits';

export class OnnxIclModel implements TabularModel {
  readonly parameterCount = 0;
  readonly name: string;
  private session: Promise<import('onnxruntime-node').InferenceSession> | undefined;

  constructor(readonly path: string) {
    if (!existsSync(path)) throw new ParamError('model.path', `no ONNX file at ${path}`);
    this.name = `onnx ${path.split(/[\\/]/).pop()}`;
  }

  private async open(): Promise<import('onnxruntime-node').InferenceSession> {
    const o = await runtime();
    const s = await o.InferenceSession.create(readFileSync(this.path));
    for (const i of ONNX_INPUTS) if (!s.inputNames.includes(i)) throw new ParamError('model.onnx.inputs', `${this.path} lacks input ${i}; the contract needs ${ONNX_INPUTS.join(', ')}, it has ${s.inputNames.join(', ')}`);
    if (!s.outputNames.includes(ONNX_OUTPUT)) throw new ParamError('model.onnx.outputs', `${this.path} lacks output ${ONNX_OUTPUT}; it has ${s.outputNames.join(', ')}`);
    return s;
  }

  async predictProba(t: IclTask): Promise<Float32Array> {
    const o = await runtime();
    this.session ??= this.open();
    const s = await this.session;
    const F = t.nFeatures;
    const out = await s.run({
      train_x: new o.Tensor('float32', t.xTrain, [t.nTrain, F]),
      train_y: new o.Tensor('int64', BigInt64Array.from(t.yTrain, (v) => BigInt(v)), [t.nTrain]),
      test_x: new o.Tensor('float32', t.xTest, [t.nTest, F]),
    });
    const y = out[ONNX_OUTPUT]!;
    const [rows, K] = y.dims as number[];
    if (rows !== t.nTest || K! < t.nClasses) throw new ParamError('model.onnx.test_logits', `has shape [${y.dims.join(', ')}], expected [${t.nTest}, >= ${t.nClasses}]`);
    const logits = y.data as Float32Array;
    const p = new Float32Array(t.nTest * t.nClasses);
    for (let i = 0; i < t.nTest; i++) {
      let m = -Infinity;
      for (let k = 0; k < t.nClasses; k++) m = Math.max(m, logits[i * K! + k]!);
      let z = 0;
      for (let k = 0; k < t.nClasses; k++) z += (p[i * t.nClasses + k] = Math.exp(logits[i * K! + k]! - m));
      for (let k = 0; k < t.nClasses; k++) p[i * t.nClasses + k]! /= z;
    }
    return p;
  }

  dispose(): void {
    void this.session?.then((s) => s.release());
  }
}

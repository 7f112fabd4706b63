/** Models by the names suites and reports use. */
import { Transformer, parseTransformerConfig } from './transformer.js';
import type { ModelContext, ModelFactory, SequenceModel } from './types.js';
import { ParamError } from '../datasets/params.js';

const MODELS: Record<string, ModelFactory> = {
  dense: (params, ctx) => new Transformer('dense', parseTransformerConfig('model.dense', params), ctx),
};

export function modelNames(): string[] {
  return Object.keys(MODELS);
}

export function buildModel(name: string, params: Record<string, unknown>, ctx: ModelContext): SequenceModel {
  const f = MODELS[name];
  if (!f) throw new ParamError('model', `unknown model ${JSON.stringify(name)}; allowed: ${modelNames().join(', ')}`);
  return f(params, ctx);
}

/** Validate a model config without allocating weights (for --list and suite validation). */
export function checkModel(name: string, params: Record<string, unknown>): void {
  if (!MODELS[name]) throw new ParamError('model', `unknown model ${JSON.stringify(name)}; allowed: ${modelNames().join(', ')}`);
  if (name === 'dense') parseTransformerConfig(`model.${name}`, params);
}

/** Models by the names suites and reports use. */
import { Transformer, parseTransformerConfig, type AttentionModule, type TransformerConfig } from './transformer.js';
import type { ModelContext, ModelFactory, SequenceModel } from './types.js';
import { ParamError } from '../core/params.js';
import { parseLayoutSpec, type LayoutKind } from '../kernels/attention.js';
import { combinerAttention, parseCombinerConfig } from './combiner.js';
import { SeqBoat, parseSeqBoatConfig } from './seqboat.js';
import { longGenAttention, parseLongGenConfig } from './longgen.js';
import { parseRoutingConfig, routingAttention } from './routing.js';
import { dmaAttention, parseDmaConfig } from './dma.js';
import { parseSparsifinerConfig, sparsifinerAttention } from './sparsifiner.js';

/** Combiner: the transformer with Combiner's factorised attention (`combiner: {segLen, causal}`). */
function combiner(variant: 'fixed' | 'axial'): ReturnType<typeof transformer> {
  const name = `combiner-${variant}`;
  const split = (where: string, p: Record<string, unknown>) => {
    const { combiner = {}, ...rest } = p;
    return { config: parseTransformerConfig(where, rest), comb: parseCombinerConfig(`${where}.combiner`, { ...(combiner as Record<string, unknown>), variant }) };
  };
  return {
    parse: (where, p) => void split(where, p),
    build: (p, ctx) => {
      const { config, comb } = split(`model.${name}`, p);
      return new Transformer(name, config, ctx, undefined, { fn: (q, k, v) => combinerAttention(q, k, v, comb), config: { combiner: comb } });
    },
  };
}

/**
 * A transformer attending through a module of its own, configured under `params[key]` (LongGen's
 * `longgen: {...}`, the Routing Transformer's `routing: {...}`, ...); the rest is the transformer's.
 */
function withModule<C>(name: string, key: string, parse: (where: string, given: Record<string, unknown>) => C,
  module: (c: C, t: TransformerConfig, ctx: ModelContext) => AttentionModule): ReturnType<typeof transformer> {
  const split = (where: string, p: Record<string, unknown>) => {
    const { [key]: own = {}, ...rest } = p;
    return { config: parseTransformerConfig(where, rest), own: parse(`${where}.${key}`, own as Record<string, unknown>) };
  };
  return {
    parse: (where, p) => void split(where, p),
    build: (p, ctx) => {
      const { config, own } = split(`model.${name}`, p);
      return new Transformer(name, config, ctx, undefined, module(own, config, ctx));
    },
  };
}

/** LongGen: the transformer with a third of its layers (the middle ones) full and the rest sparse. */
const longgen = () => withModule('longgen', 'longgen', parseLongGenConfig, (lg, t) => ({ fn: longGenAttention(lg, t.nLayers), config: { longgen: lg } }));

/**
 * Transformers that differ only in their attention layout: `attention` holds the layout parameters
 * (see kernels/attention.ts), everything else is the transformer's.
 */
function transformer(kind: LayoutKind): { parse(where: string, p: Record<string, unknown>): void; build: ModelFactory } {
  const split = (where: string, p: Record<string, unknown>) => {
    const { attention = {}, ...rest } = p;
    const layout = parseLayoutSpec(`${where}.attention`, { ...(attention as Record<string, unknown>), kind });
    return { config: parseTransformerConfig(where, rest), layout };
  };
  return {
    parse: (where, p) => void split(where, p),
    build: (p, ctx) => {
      const { config, layout } = split(`model.${kind}`, p);
      return new Transformer(kind, config, ctx, layout);
    },
  };
}

const MODELS: Record<string, ReturnType<typeof transformer>> = {
  dense: transformer('dense'),
  window: transformer('window'),
  bigbird: transformer('bigbird'),
  longgen: longgen(),
  routing: withModule('routing', 'routing', parseRoutingConfig, (c, t, ctx) => routingAttention(c, t.nLayers, ctx.seed)),
  dma: withModule('dma', 'dma', parseDmaConfig, (c, t) => dmaAttention(c, t.nLayers)),
  sparsifiner: withModule('sparsifiner', 'sparsifiner', parseSparsifinerConfig, (c, t) => sparsifinerAttention(c, t.nLayers)),
  'combiner-fixed': combiner('fixed'),
  'combiner-axial': combiner('axial'),
  seqboat: { parse: (where, p) => void parseSeqBoatConfig(where, p), build: (p, ctx) => new SeqBoat(parseSeqBoatConfig('model.seqboat', p), ctx) },
};

export function modelNames(): string[] {
  return Object.keys(MODELS);
}

export function buildModel(name: string, params: Record<string, unknown>, ctx: ModelContext): SequenceModel {
  const m = MODELS[name];
  if (!m) throw new ParamError('model', `unknown model ${JSON.stringify(name)}; allowed: ${modelNames().join(', ')}`);
  return m.build(params, ctx);
}

/** Validate a model config without allocating weights (for --list and suite validation). */
export function checkModel(name: string, params: Record<string, unknown>): void {
  const m = MODELS[name];
  if (!m) throw new ParamError('model', `unknown model ${JSON.stringify(name)}; allowed: ${modelNames().join(', ')}`);
  m.parse(`model.${name}`, params);
}


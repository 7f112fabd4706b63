/** Tabular models by name: the two ICL networks and the classical baselines. */
import { ParamError } from '../../core/params.js';
import { IclNetwork, parseIclConfig, type IclConfig } from './icl-network.js';
import { loadCheckpoint } from './checkpoint.js';
import { ENSEMBLE_DEFAULTS, IclModel, type EnsembleOptions } from './icl-model.js';

export const ICL_MODELS = ['orion-msp', 'dense-icl'] as const;
export type IclModelName = (typeof ICL_MODELS)[number];

/** The two ICL networks differ only in the row-interaction layout: same size, same parameters. */
export function iclConfig(model: string, overrides: Partial<IclConfig> = {}): IclConfig {
  if (!(ICL_MODELS as readonly string[]).includes(model)) throw new ParamError('model', `unknown ICL model ${JSON.stringify(model)}; allowed: ${ICL_MODELS.join(', ')}`);
  return parseIclConfig(model, { ...overrides, rowAttention: model === 'orion-msp' ? 'sparse' : 'dense' });
}

export function buildIclNetwork(model: string, seed: number, overrides: Partial<IclConfig> = {}): IclNetwork {
  return new IclNetwork(iclConfig(model, overrides), seed);
}

/** An ICL model over a checkpoint folder: `model` picks the row layout (dense-icl reads orion-msp's weights). */
export function iclModelFromCheckpoint(model: string, dir: string, o: Partial<Pick<EnsembleOptions, 'members' | 'maxFeatures' | 'transform'>> = {}): IclModel {
  const { net } = loadCheckpoint(dir, { rowAttention: iclConfig(model).rowAttention });
  return new IclModel(model, net, { ...ENSEMBLE_DEFAULTS, ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) });
}

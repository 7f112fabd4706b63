/**
 * A deterministic slice of a suite for schedulers without a queue (Slurm arrays, Kubernetes Indexed
 * Jobs, CI matrices): every shard computes the same assignment from the same job list, so the n
 * shards together run each job exactly once. Longest-processing-time first: jobs by expected cost
 * (descending, ties by plan order) each go to the shard with the least cost so far (ties: lowest
 * index), which keeps the shards' total costs within one job of each other.
 */
import { ParamError } from '../core/params.js';

export interface ShardSpec { index: number; count: number }

/** `i/n` with 0 <= i < n (as SLURM_ARRAY_TASK_ID and JOB_COMPLETION_INDEX count). */
export function parseShard(v: string): ShardSpec {
  const m = /^(\d+)\/(\d+)$/.exec(v.trim());
  const index = m ? Number(m[1]) : NaN, count = m ? Number(m[2]) : NaN;
  if (!m || !(count >= 1) || !(index < count)) throw new ParamError('--shard', `must be i/n with 0 <= i < n (e.g. 0/4), got ${JSON.stringify(v)}`);
  return { index, count };
}

/** The shard of each job id. */
export function assignShards(jobs: { id: string; cost?: number }[], count: number): Map<string, number> {
  const load = new Array<number>(count).fill(0);
  const out = new Map<string, number>();
  const order = jobs.map((j, i) => ({ id: j.id, cost: j.cost ?? 1, i })).sort((a, b) => b.cost - a.cost || a.i - b.i);
  for (const j of order) {
    let s = 0;
    for (let k = 1; k < count; k++) if (load[k]! < load[s]!) s = k;
    out.set(j.id, s);
    load[s]! += j.cost;
  }
  return out;
}

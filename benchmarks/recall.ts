// recall@k: the share of the exact top k an approximate search returned. Order does not matter; a
// result with fewer than k exact neighbours (a small namespace) is judged against what exists.

export function recallAtK(approximate: readonly string[], exact: readonly string[], k: number): number {
  const truth = new Set(exact.slice(0, k));
  if (truth.size === 0) return 1;
  const found = approximate.slice(0, k).filter((id) => truth.has(id)).length;
  return found / truth.size;
}

export interface RecallSummary {
  k: number;
  mean: number;
  min: number;
  /** Queries compared with exact search. */
  sampleSize: number;
  /** Queries that returned fewer rows than exact search found (up to k): rows lost. */
  shortResults: number;
  /** Fewest rows one query of the sample returned. */
  minRows: number;
}

/** One sampled query: its recall, and the rows it and exact search returned. */
export interface RecallSample {
  recall: number;
  rows: number;
  exactRows: number;
}

/** A query lost rows when it returned fewer than min(k, rows exact search found). */
export function lostRows(sample: RecallSample, k: number): boolean {
  return sample.rows < Math.min(k, sample.exactRows);
}

export function summarizeRecall(samples: readonly RecallSample[], k: number): RecallSummary {
  if (samples.length === 0) return { k, mean: 0, min: 0, sampleSize: 0, shortResults: 0, minRows: 0 };
  const values = samples.map((sample) => sample.recall);
  const mean = values.reduce((sum, value) => sum + value, 0) / values.length;
  return {
    k,
    mean: Math.round(mean * 10000) / 10000,
    min: Math.min(...values),
    sampleSize: values.length,
    shortResults: samples.filter((sample) => lostRows(sample, k)).length,
    minRows: Math.min(...samples.map((sample) => sample.rows)),
  };
}

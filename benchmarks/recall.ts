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
}

export function summarizeRecall(values: readonly number[], k: number): RecallSummary {
  if (values.length === 0) return { k, mean: 0, min: 0, sampleSize: 0 };
  const mean = values.reduce((sum, value) => sum + value, 0) / values.length;
  return { k, mean: Math.round(mean * 10000) / 10000, min: Math.min(...values), sampleSize: values.length };
}

// recall@k on hand-made cases.
import test from "ava";
import { lostRows, recallAtK, summarizeRecall } from "../../benchmarks/recall.ts";

const exact = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"];

test("all of the exact top 10 found, in any order: recall 1", (t) => {
  t.is(recallAtK(["10", "9", "8", "7", "6", "5", "4", "3", "2", "1"], exact, 10), 1);
});

test("8 of the exact top 10 found: recall 0.8", (t) => {
  t.is(recallAtK(["1", "2", "3", "4", "5", "6", "7", "8", "98", "99"], exact, 10), 0.8);
});

test("only the first k results count, on both sides", (t) => {
  // "11" is the exact 11th neighbour: outside the exact top 10, so it does not count.
  t.is(recallAtK(["11", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10"], exact, 10), 0.9);
});

test("fewer than k rows exist (a small namespace): judged against what exists", (t) => {
  t.is(recallAtK(["a", "b", "c"], ["a", "b", "c"], 10), 1);
  t.is(recallAtK(["a", "b"], ["a", "b", "c", "d"], 10), 0.5);
});

test("an approximate search that returns nothing has recall 0; nothing to find is recall 1", (t) => {
  t.is(recallAtK([], ["a"], 10), 0);
  t.is(recallAtK([], [], 10), 1);
});

test("summary: mean, min and sample size", (t) => {
  const full = (recall: number) => ({ recall, rows: 10, exactRows: 10 });
  t.deepEqual(summarizeRecall([1, 0.9, 0.8, 0.7].map(full), 10), { k: 10, mean: 0.85, min: 0.7, sampleSize: 4, shortResults: 0, minRows: 10 });
  t.deepEqual(summarizeRecall([], 10), { k: 10, mean: 0, min: 0, sampleSize: 0, shortResults: 0, minRows: 0 });
});

test("a query lost rows when it returned fewer than min(k, rows that exist)", (t) => {
  t.false(lostRows({ recall: 1, rows: 10, exactRows: 10 }, 10));
  t.false(lostRows({ recall: 1, rows: 3, exactRows: 3 }, 10), "a namespace of 3 rows: 3 is all");
  t.true(lostRows({ recall: 0.4, rows: 4, exactRows: 10 }, 10));
  t.true(lostRows({ recall: 1, rows: 2, exactRows: 3 }, 10));
  const summary = summarizeRecall([{ recall: 1, rows: 10, exactRows: 10 }, { recall: 0.3, rows: 3, exactRows: 10 }], 10);
  t.is(summary.shortResults, 1);
  t.is(summary.minRows, 3);
});

// The latency statistics against distributions whose percentiles are known exactly.
import test from "ava";
import { createRandom } from "../../benchmarks/dataset.ts";
import { LatencyRecorder } from "../../benchmarks/latency.ts";

// HDR histogram with 3 significant digits: any value is kept to within 0.1 %.
const within = (actual: number, expected: number, relative: number) => Math.abs(actual - expected) <= expected * relative;

test("uniform 1..10000 ms: p50 5000, p95 9500, p99 9900, max 10000 within HDR precision", (t) => {
  const recorder = new LatencyRecorder();
  for (let value = 1; value <= 10_000; value++) recorder.recordMs(value);
  const summary = recorder.summary();
  t.is(recorder.count, 10_000);
  t.true(within(summary.p50, 5000, 0.001), `p50 ${summary.p50}`);
  t.true(within(summary.p95, 9500, 0.001), `p95 ${summary.p95}`);
  t.true(within(summary.p99, 9900, 0.001), `p99 ${summary.p99}`);
  t.true(within(summary.max, 10_000, 0.001), `max ${summary.max}`);
  t.true(within(summary.mean, 5000.5, 0.001), `mean ${summary.mean}`);
});

test("sub-millisecond values keep microsecond resolution", (t) => {
  const recorder = new LatencyRecorder();
  for (let i = 1; i <= 1000; i++) recorder.recordMs(i / 1000); // 0.001 .. 1 ms
  t.true(within(recorder.summary().p50, 0.5, 0.002), `p50 ${recorder.summary().p50}`);
});

test("exponential samples: p50 = ln 2 x mean and p99 = ln 100 x mean, within sampling error", (t) => {
  const random = createRandom(7);
  const recorder = new LatencyRecorder();
  const mean = 20; // ms
  for (let i = 0; i < 200_000; i++) recorder.recordMs(-mean * Math.log(1 - random()));
  const summary = recorder.summary();
  t.true(within(summary.p50, mean * Math.LN2, 0.02), `p50 ${summary.p50}`);
  t.true(within(summary.p99, mean * Math.log(100), 0.03), `p99 ${summary.p99}`);
  t.true(within(summary.mean, mean, 0.02), `mean ${summary.mean}`);
});

test("errors count against the success rate and keep the first message", (t) => {
  const recorder = new LatencyRecorder();
  for (let i = 0; i < 97; i++) recorder.recordMs(1);
  recorder.recordError(new Error("first"));
  recorder.recordError(new Error("second"));
  recorder.recordError("third");
  t.is(recorder.errors, 3);
  t.is(recorder.successRate(), 0.97);
  t.is(recorder.firstError, "first");
});

test("an empty recorder reports zeros and no curve", (t) => {
  const recorder = new LatencyRecorder();
  t.deepEqual(recorder.summary(), { p50: 0, p95: 0, p99: 0, max: 0, mean: 0 });
  t.deepEqual(recorder.percentileCurve(), []);
  t.is(recorder.successRate(), 0);
});

test("the percentile curve rises, stops where the sample size allows, and ends at the maximum", (t) => {
  const recorder = new LatencyRecorder();
  for (let value = 1; value <= 1000; value++) recorder.recordMs(value);
  const curve = recorder.percentileCurve();
  for (let i = 1; i < curve.length; i++) t.true(curve[i].latencyMs >= curve[i - 1].latencyMs);
  const finite = curve.filter((point) => point.percentile < 100);
  t.true(finite[finite.length - 1].percentile <= 99.9); // 1000 samples resolve p99.9 at most
  t.deepEqual(curve[curve.length - 1], { percentile: 100, latencyMs: recorder.summary().max });
});

test("merging recorders adds their samples", (t) => {
  const a = new LatencyRecorder();
  const b = new LatencyRecorder();
  for (let value = 1; value <= 500; value++) a.recordMs(value);
  for (let value = 501; value <= 1000; value++) b.recordMs(value);
  b.recordError(new Error("x"));
  a.add(b);
  t.is(a.count, 1000);
  t.is(a.errors, 1);
  t.true(within(a.summary().p50, 500, 0.001));
});

import test from "ava";
import { failureSummary } from "../support/ava-summary.ts";

const run = [
  "",
  "  ✔ passes",
  "    ℹ hello",
  "  ✘ [fail]: scale › out 0 failed",
  "    ℹ measured 3 s",
  "    ℹ exit 1 after 80 s",
  "  ✔ later",
  "  ─",
  "",
  "  scale › out 0 failed",
  "  test/cluster/scale.test.ts:3",
  "",
  "",
  "  Difference (- actual, + expected):",
  "",
  "  - 1",
  "  + 0",
  "  ─",
  "",
  "  1 test failed",
].join("\n");

test("the failed test with its log lines, then ava's closing report without doubled blank lines", (t) => {
  t.deepEqual(failureSummary(run), [
    "  ✘ [fail]: scale › out 0 failed",
    "    ℹ measured 3 s",
    "    ℹ exit 1 after 80 s",
    "  ─",
    "",
    "  scale › out 0 failed",
    "  test/cluster/scale.test.ts:3",
    "",
    "  Difference (- actual, + expected):",
    "",
    "  - 1",
    "  + 0",
    "  ─",
    "",
    "  1 test failed",
  ]);
});

test("nothing when every test passed; long parts are cut and say so", (t) => {
  t.deepEqual(failureSummary("  ✔ a\n  ✔ b\n\n  2 tests passed\n"), []);
  const long = failureSummary(run, { logLines: 1, reportLines: 6 });
  t.deepEqual(long.slice(0, 3), ["  ✘ [fail]: scale › out 0 failed", "    ℹ measured 3 s", "    … 1 more log line(s) in the full output"]);
  t.deepEqual(long.slice(3), ["  ─", "", "  scale › out 0 failed", "  … (cut)", "", "  1 test failed"]);
});

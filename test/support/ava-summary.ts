// What a failed ava run printed that a reader of CI needs: CI keeps only the tail of the output, and
// the cluster harness prints the cluster's logs after ava's own report, so the failures would scroll
// out of what is kept. The harness prints this summary last.

/** The failed tests' lines (`✘ ...`) with the `ℹ` log lines under each (at most `logLines` per test),
 *  then ava's closing report (from the first `─` rule after the last test line), cut to `reportLines`.
 *  `output`: ava's default reporter output (as printed when stdout is not a TTY). Returns [] when no
 *  test failed. */
export function failureSummary(output: string, { logLines = 12, reportLines = 60 } = {}): string[] {
  // Colours, when ava wrote to a terminal.
  const lines = output.replace(/\x1b\[[0-9;]*m/g, "").split("\n");
  const summary: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^\s*✘/.test(lines[i])) continue;
    summary.push(lines[i]);
    const logs: string[] = [];
    for (let j = i + 1; j < lines.length && /^\s{4,}\S/.test(lines[j]) && !/^\s*[✔✘─]/.test(lines[j]); j++) logs.push(lines[j]);
    summary.push(...logs.slice(0, logLines));
    if (logs.length > logLines) summary.push(`    … ${logs.length - logLines} more log line(s) in the full output`);
  }
  if (summary.length === 0) return [];
  const lastTest = lines.reduce((last, line, i) => (/^\s*[✔✘]/.test(line) ? i : last), -1);
  const rule = lines.findIndex((line, i) => i > lastTest && /^\s*─\s*$/.test(line));
  if (rule >= 0) {
    const report = lines.slice(rule).filter((line, i, all) => line.trim() !== "" || all[i - 1]?.trim() !== "");
    summary.push(...(report.length > reportLines ? [...report.slice(0, reportLines - 3), "  … (cut)", ...report.slice(-2)] : report));
  }
  return summary;
}

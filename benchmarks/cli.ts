// npm run bench -- --url URL --mode quick|full|stress --out DIR [--fail-on critical]
import { parseArgs } from "./options.ts";
import { progressFor } from "./progress.ts";
import { runBenchmark } from "./runner.ts";
import { exitCodeFor } from "./targets.ts";
import { formatSummary, summarizeReport } from "./summary.ts";

async function main(): Promise<number> {
  let options;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    return 2;
  }
  const { report, files } = await runBenchmark(options, progressFor(process.stderr));
  process.stdout.write(formatSummary(summarizeReport(report)) + "\n");
  for (const note of report.notes) process.stdout.write(`note: ${note}\n`);
  if (files) process.stdout.write(`wrote ${files.json} and ${files.html}\n`);
  return exitCodeFor(report.verdict, options.failOn);
}

main().then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`benchmark failed: ${(error as Error).stack ?? error}\n`);
    process.exit(2);
  },
);

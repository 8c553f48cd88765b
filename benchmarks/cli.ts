// npm run bench -- --url URL --mode quick|full|stress --out DIR [--fail-on critical]
//                  [--metrics-listen HOST:PORT]  serve the searches' Prometheus metrics during the run
import { SearchMetrics } from "./metrics.ts";
import { parseArgs } from "./options.ts";
import { progressFor } from "./progress.ts";
import { runBenchmark } from "./runner.ts";
import { exitCodeFor } from "./targets.ts";
import { formatSummary, summarizeReport } from "./summary.ts";

// One more scrape of the final values at Prometheus' default 15 s interval before the endpoint closes.
const METRICS_LINGER_MS = 16_000;

/** Takes `--metrics-listen HOST:PORT` out of the arguments (the suite's own options parse the rest). */
function takeMetricsListen(argv: string[]): { rest: string[]; listen?: string } {
  const index = argv.indexOf("--metrics-listen");
  if (index === -1) return { rest: argv };
  const listen = argv[index + 1];
  if (!listen || !/^[^:]+:\d+$/.test(listen)) throw new Error("--metrics-listen: expected HOST:PORT, e.g. 127.0.0.1:9464");
  return { rest: [...argv.slice(0, index), ...argv.slice(index + 2)], listen };
}

async function main(): Promise<number> {
  let options;
  let listen: string | undefined;
  try {
    const taken = takeMetricsListen(process.argv.slice(2));
    listen = taken.listen;
    options = parseArgs(taken.rest);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    return 2;
  }
  const metrics = listen ? new SearchMetrics() : undefined;
  const server = listen ? await metrics!.serve(listen) : undefined;
  if (listen) process.stderr.write(`search metrics on http://${listen}/metrics\n`);
  const { report, files } = await runBenchmark(options, progressFor(process.stderr), metrics).finally(async () => {
    if (!server) return;
    await new Promise((resolve) => setTimeout(resolve, METRICS_LINGER_MS));
    server.close();
  });
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

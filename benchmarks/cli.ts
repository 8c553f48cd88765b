// npm run bench -- --url URL --mode quick|full|stress --out DIR [--fail-on critical]
//                  [--metrics-listen HOST:PORT]  serve the searches' Prometheus metrics during the run
//                  [--baseline local]            start a plain PostgreSQL node for the run (local/baseline.ts)
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { BaselineNode } from "../local/baseline.ts";
import { SearchMetrics } from "./metrics.ts";
import { parseArgs, type BenchmarkOptions } from "./options.ts";
import { progressFor } from "./progress.ts";
import { runBenchmark } from "./runner.ts";
import { exitCodeFor } from "./targets.ts";
import { formatSummary, summarizeReport } from "./summary.ts";

const ROOT = resolve(import.meta.dirname, "..");

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
  // --baseline local: a plain node of the stack's settings for this run only, stopped and deleted after.
  let baselineNode: BaselineNode | undefined;
  if (options.localBaseline) {
    if (process.getuid?.() !== 0) {
      process.stderr.write("--baseline local must run as root: the node runs as the postgres user (PostgreSQL refuses root)\n");
      return 2;
    }
    const { stack, stateDir } = options.localBaseline;
    const stackFile = join(ROOT, `Pulumi.${stack}.yaml`);
    if (!existsSync(stackFile)) {
      process.stderr.write(`--stack ${stack}: no stack file ${stackFile} (the baseline takes that stack's settings)\n`);
      return 2;
    }
    baselineNode = new BaselineNode({
      stackFile,
      dir: resolve(stateDir ?? join(ROOT, ".state", "bench-baseline")),
      log: (line) => process.stderr.write(`${line}\n`),
    });
    try {
      await baselineNode.up();
    } catch (error) {
      await baselineNode.down(true);
      throw error;
    }
    options = { ...options, baselineUrl: baselineNode.appUrl() };
  }
  try {
    return await run(options, listen);
  } finally {
    if (baselineNode) {
      await baselineNode.down(true);
      process.stderr.write(`baseline: stopped and removed ${baselineNode.paths.dir}\n`);
    }
  }
}

async function run(options: BenchmarkOptions, listen: string | undefined): Promise<number> {
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

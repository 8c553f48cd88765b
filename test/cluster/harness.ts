// `npm run test:cluster`: the real-service tests, against the local cluster of Pulumi.local.yaml.
//  1. bad-input tests, which need the cluster down;
//  2. `up` once, then every other test/cluster/*.test.ts in turn against it (the env names the cluster);
//  3. `down --purge`, always, and a check that no process of it is left. When a test failed, the
//     cluster's logs are first copied to .state/failed-logs/<time>/ and their last lines printed: a CI
//     run keeps only what it printed, and `--purge` deletes the logs. DPC_TEST_KEEP_LOGS=1 keeps a
//     passing run's logs too, in .state/kept-logs/<time>/. Last of all, the failed tests and ava's
//     report on them are printed again (test/support/ava-summary.ts).
// `npm run test:cluster -- citus switchover` runs only the named files (and bad-input only if named):
// for working on one test. CI runs them all.
import { spawn } from "node:child_process";
import { cpSync, existsSync, readFileSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { LocalCluster } from "../../local/cluster.ts";
import { processesUnder } from "../../local/processes.ts";
import { failureSummary } from "../support/ava-summary.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const STACK_FILE = join(ROOT, "Pulumi.local.yaml");
const STATE_DIR = join(ROOT, ".state", "test");
const BAD_INPUT = "test/cluster/bad-input.test.ts";

/** What every ava run printed, for the failure summary printed last. */
const printed: string[] = [];

/** Runs ava on `files`, its output both shown and kept; resolves to its exit status. */
function ava(files: string[], env: NodeJS.ProcessEnv = {}): Promise<number> {
  const child = spawn("npx", ["ava", "--serial", "--concurrency=1", "--timeout=10m", ...files], {
    cwd: ROOT,
    stdio: ["inherit", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  let out = "";
  child.stdout.on("data", (chunk: Buffer) => {
    process.stdout.write(chunk);
    out += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => process.stderr.write(chunk));
  return new Promise((resolve) =>
    child.on("close", (code) => {
      printed.push(out);
      resolve(code ?? 1);
    }),
  );
}

/** Copies a failed run's log directory out of the state directory that `down --purge` deletes, and
 *  prints the last 40 lines of each file (the same lines CI keeps). */
function keepLogs(logDir: string, failed = true): void {
  if (!existsSync(logDir)) return;
  const target = join(ROOT, ".state", failed ? "failed-logs" : "kept-logs", new Date().toISOString().replace(/[:.]/g, "-"));
  cpSync(logDir, target, { recursive: true });
  if (!failed) {
    console.log(`[local] the cluster's logs are kept in ${target} (DPC_TEST_KEEP_LOGS)`);
    return;
  }
  console.error(`[local] a test failed: the cluster's logs are kept in ${target}; the last lines of each:`);
  for (const file of readdirSync(logDir).sort()) {
    const lines = readFileSync(join(logDir, file), "utf8").trimEnd().split("\n").slice(-40);
    console.error(`----- ${file} (last ${lines.length} lines)\n${lines.join("\n")}`);
  }
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    console.error("test:cluster must run as root: it starts every process as the postgres user");
    return 1;
  }
  const only = process.argv.slice(2);
  const wanted = (file: string) => only.length === 0 || only.includes(file.replace(/^test\/cluster\//, "").replace(".test.ts", ""));
  let failures = wanted(BAD_INPUT) ? await ava([BAD_INPUT]) : 0;

  const cluster = new LocalCluster({ stackFile: STACK_FILE, stateDir: STATE_DIR, log: (line) => console.log(`[local] ${line}`) });
  await cluster.down(true);
  try {
    const { seconds, validatedConfigs, schema } = await cluster.up();
    console.log(`[local] cluster healthy after ${seconds.toFixed(1)} s; ${validatedConfigs.length} Patroni configs passed patroni --validate-config`);
    // `up` applied the migrations to the fresh cluster; sql-bench applies them again (no change), then
    // the Citus tests load their data, and monitoring-live sees the schema's tables and indexes.
    const order = ["local-cluster", "sql-bench", "citus", "monitoring-live"];
    // Last: scaling moves shards (the moved shards start without planner statistics) and changes
    // the topology for a while; then password-rotation changes every password (the URLs below hold
    // the first ones). Every other test sees the cluster as `up` made it.
    // scaling-step (the Kubernetes scaling Job's step) adds and removes a group the same way;
    // rotation-step (the Kubernetes rotation Job's step) changes every password too.
    const last = ["scale-workers", "scaling-step", "rotation-step", "password-rotation"];
    const rank = (file: string) => {
      const name = file.replace(".test.ts", "");
      if (last.includes(name)) return order.length + 1 + last.indexOf(name);
      const index = order.indexOf(name);
      return index === -1 ? order.length : index; // the rest after these, by name
    };
    const files = readdirSync(join(ROOT, "test/cluster"))
      .filter((f) => f.endsWith(".test.ts") && `test/cluster/${f}` !== BAD_INPUT)
      .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b))
      .map((f) => `test/cluster/${f}`)
      .filter(wanted);
    // No file named: ava given none would run every test of the project.
    if (files.length > 0) failures += await ava(files, {
      DPC_TEST_STACK_FILE: STACK_FILE,
      DPC_TEST_STATE_DIR: STATE_DIR,
      DPC_TEST_DATABASE_URL: cluster.primaryUrl(cluster.config.database),
      DPC_TEST_PRIMARY_URL: cluster.primaryUrl("postgres"),
      DPC_TEST_APP_DATABASE_URL: cluster.pgbouncerUrl("app"),
      DPC_TEST_CLUSTER_UP_SECONDS: seconds.toFixed(2),
      DPC_TEST_VALIDATED_CONFIGS: JSON.stringify(validatedConfigs),
      DPC_TEST_SCHEMA_APPLIED: JSON.stringify(schema.applied),
    });
  } catch (error) {
    console.error(`[local] ${(error as Error).message}`);
    failures++;
  } finally {
    // DPC_TEST_KEEP_LOGS=1 keeps a passing run's logs too (.state/kept-logs/<time>/): for measuring.
    if (failures > 0) keepLogs(cluster.paths.logDir);
    else if (process.env.DPC_TEST_KEEP_LOGS) keepLogs(cluster.paths.logDir, false);
    await cluster.down(true);
    const left = processesUnder(STATE_DIR);
    if (left.length > 0) {
      console.error(`[local] processes left behind: ${left.map((p) => p.command).join("; ")}`);
      failures++;
    }
  }
  // Last, so that the tail CI keeps names what failed (the logs above would push ava's report out).
  const summary = printed.flatMap((out) => failureSummary(out));
  if (summary.length > 0) console.error(`[local] what failed (ava's report is above the logs):\n${summary.join("\n")}`);
  return failures === 0 ? 0 : 1;
}

main().then((code) => process.exit(code));

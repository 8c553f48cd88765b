// The distributed cluster on real Citus, as the application sees it: worker registration by Patroni,
// shard placement and colocation, query routing read from EXPLAIN, distributed HNSW search, settings
// per transaction, and failover of a worker group and of the coordinator under distributed writes.
// Every query of the application path runs as the `app` role through PgBouncer.
import test from "ava";
import pg from "pg";
import { ClusteredVectors, STREAMS, vectorLiteral } from "../../benchmarks/dataset.ts";
import { explainDistributed } from "../../benchmarks/distributed-plan.ts";
import { recallAtK } from "../../benchmarks/recall.ts";
import { failoverUnderWrites } from "../../local/failover.ts";
import { APP_SCHEMA, DISTRIBUTED_TABLES, REFERENCE_TABLES, hnswIndexName } from "../../sql/migrations.ts";
import { runningCluster } from "./context.ts";
import { quietClient } from "../../components/pg-client.ts";

const cluster = runningCluster();
const { config } = cluster;
const TABLE = `${APP_SCHEMA}.memory_entries`;
const INDEX = hnswIndexName("memory_entries");
const K = config.searchK;
// 2,000 rows a shard: large enough that each shard's planner prefers the HNSW index to a full scan
// for an unfiltered top-k (at 1,000 rows a shard it sometimes scans the table exactly instead).
const DATA = { rows: 24_000, namespaces: 120, dimensions: config.embeddingDimensions, clusters: 24, seed: 9 };
const NAMESPACE_PREFIX = "citus-test-";

async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  // 15 s: PgBouncer answers a first login only once it has a server connection, which took over
  // 5 s on this machine at load average 40-50 (the data load's four parallel clients timed out).
  const client = quietClient({ connectionString: url, connectionTimeoutMillis: 15000 });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}
const asApp = <T>(work: (client: pg.Client) => Promise<T>) => withClient(cluster.pgbouncerUrl("app"), work);
const asSuperuser = <T>(work: (client: pg.Client) => Promise<T>) => withClient(cluster.primaryUrl(config.database), work);

const namespaceOf = (index: number) => `${NAMESPACE_PREFIX}${index}`;
const generator = new ClusteredVectors({ ...DATA }, STREAMS.rows);
const queryVectors = new ClusteredVectors({ ...DATA }, STREAMS.queries);

/** One multi-row INSERT of rows [start, start + count). */
async function insertBatch(client: pg.Client, start: number, count: number, vectors: Float32Array[]): Promise<void> {
  const values: unknown[] = [];
  const tuples: string[] = [];
  for (let i = 0; i < count; i++) {
    const id = start + i;
    values.push(namespaceOf(id % DATA.namespaces), `key-${id}`, vectorLiteral(vectors[id]));
    tuples.push(`($${i * 3 + 1}, $${i * 3 + 2}, 'citus test row', $${i * 3 + 3}::vector)`);
  }
  await client.query(`INSERT INTO ${TABLE} (namespace, key, content, embedding) VALUES ${tuples.join(", ")}`, values);
}

test.before("load a data set spread over every shard, as the app role through PgBouncer", async () => {
  await asApp((client) => client.query(`DELETE FROM ${TABLE} WHERE namespace LIKE $1`, [`${NAMESPACE_PREFIX}%`]));
  const vectors = Array.from({ length: DATA.rows }, () => generator.nextVector());
  const batch = 500;
  const writers = 4; // the shards take their inserts in parallel
  await Promise.all(
    Array.from({ length: writers }, (_, w) =>
      asApp(async (client) => {
        for (let start = w * batch; start < DATA.rows; start += writers * batch) await insertBatch(client, start, batch, vectors);
      }),
    ),
  );
  // Statistics on every shard now, not whenever autovacuum gets to them: each shard's planner then
  // weighs the HNSW index against a full scan with the same knowledge.
  await asSuperuser((client) => client.query("SELECT run_command_on_shards($1, 'ANALYZE %s')", [TABLE]));
});

test.serial("pg_dist_node lists the coordinator (group 0) and each worker group's current primary, once each", async (t) => {
  const rows = await asSuperuser(async (client) =>
    (await client.query<{ groupid: number; nodename: string }>("SELECT groupid, nodename FROM pg_dist_node WHERE noderole = 'primary' AND isactive ORDER BY groupid")).rows,
  );
  const expected = await Promise.all(
    cluster.topology.groups.map(async (_, group) => ({ groupid: group, nodename: cluster.addressing.postgres((await cluster.leader(group))!).connect })),
  );
  t.deepEqual(rows.map((r) => ({ groupid: Number(r.groupid), nodename: r.nodename })), expected);
});

test.serial("shards: shardCount of them, spread evenly over the worker groups; one colocation; reference tables on every worker", async (t) => {
  const facts = await asSuperuser(async (client) => {
    const perGroup = await client.query<{ groupid: number; shards: number }>(
      `SELECT p.groupid, count(*)::int AS shards FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid)
        WHERE s.logicalrelid = $1::regclass GROUP BY p.groupid ORDER BY p.groupid`,
      [TABLE],
    );
    const tables = await client.query<{ name: string; method: string; colocation: number }>(
      `SELECT logicalrelid::regclass::text AS name, partmethod AS method, colocationid AS colocation FROM pg_dist_partition
        WHERE logicalrelid::regclass::text LIKE $1`,
      [`${APP_SCHEMA}.%`],
    );
    const referencePlacements = await client.query<{ name: string; groups: number[] }>(
      `SELECT s.logicalrelid::regclass::text AS name, array_agg(DISTINCT p.groupid ORDER BY p.groupid) AS groups
         FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid) JOIN pg_dist_partition d USING (logicalrelid)
        WHERE d.partmethod = 'n' AND s.logicalrelid::regclass::text LIKE $1 GROUP BY 1 ORDER BY 1`,
      [`${APP_SCHEMA}.%`],
    );
    return { perGroup: perGroup.rows, tables: tables.rows, referencePlacements: referencePlacements.rows };
  });
  const workerGroups = Array.from({ length: config.workerGroups }, (_, i) => i + 1);
  t.deepEqual(facts.perGroup.map((r) => Number(r.groupid)), workerGroups, "every worker group holds shards, the coordinator none");
  const counts = facts.perGroup.map((r) => r.shards);
  t.is(counts.reduce((a, b) => a + b, 0), config.shardCount);
  t.true(Math.max(...counts) - Math.min(...counts) <= 1, `shards per worker group: ${counts.join(", ")}`);
  t.log(`shards of ${TABLE} per worker group: ${counts.join(", ")}`);

  const hashed = facts.tables.filter((r) => r.method === "h");
  t.deepEqual(hashed.map((r) => r.name.replace(`${APP_SCHEMA}.`, "")).sort(), [...DISTRIBUTED_TABLES].sort());
  t.is(new Set(hashed.map((r) => r.colocation)).size, 1, "the distributed tables share one colocation id");
  t.deepEqual(facts.referencePlacements.map((r) => r.name.replace(`${APP_SCHEMA}.`, "")).sort(), [...REFERENCE_TABLES].sort());
  // Reference tables are placed on every node with metadata, the coordinator (group 0) included.
  for (const row of facts.referencePlacements) t.deepEqual(row.groups.map(Number).filter((g) => g > 0), workerGroups, `${row.name} on every worker group`);
});

test.serial("routing: one namespace is one task on one worker; several touch only their shards; none touches every shard", async (t) => {
  const vector = vectorLiteral(queryVectors.nextVector());
  const search = (filter: string) => `SELECT key FROM ${TABLE} ${filter} ORDER BY embedding <=> $1::vector LIMIT ${K}`;
  await asApp(async (client) => {
    const one = await explainDistributed(client, search("WHERE namespace = $2"), [vector, namespaceOf(1)], INDEX);
    t.is(one.tasks, 1);
    t.is(one.workers.length, 1);

    const namespaces = [namespaceOf(1), namespaceOf(2), namespaceOf(3)];
    const shards = await client.query<{ shardid: string }>(
      "SELECT DISTINCT get_shard_id_for_distribution_column($1, ns) AS shardid FROM unnest($2::text[]) AS ns",
      [TABLE, namespaces],
    );
    const several = await explainDistributed(client, search("WHERE namespace = ANY($2::text[])"), [vector, namespaces], INDEX);
    t.is(several.tasks, shards.rowCount!, "tasks = distinct shards of the namespaces asked for");

    const all = await explainDistributed(client, search(""), [vector], INDEX);
    t.is(all.tasks, config.shardCount);
    t.is(all.workers.length, config.workerGroups);
    // At 2,000 rows a shard the planner's choice between the HNSW index and an exact scan is close
    // (both return the top k; the exact one with recall 1), and it differs from shard to shard with
    // their statistics. With full scans priced out, every shard's plan must be the HNSW index: it
    // exists on every shard and serves the pushed-down ORDER BY ... LIMIT (sorts priced out too, so a
    // full scan of the primary key's index plus a sort does not stand in for it).
    const indexed = await explainDistributed(client, search(""), [vector], INDEX, { enable_seqscan: "off", enable_sort: "off" });
    t.is(indexed.indexTasks, config.shardCount, `every shard can search by its HNSW index (${indexed.indexes.join(", ")})`);
    t.log(
      `one namespace: 1 task; ${namespaces.length} namespaces: ${several.tasks} tasks; no filter: ${all.tasks} tasks on ${all.workers.length} workers, ` +
        `the planner chose HNSW on ${all.indexTasks} of them (an exact scan on the rest), and on all ${indexed.indexTasks} with full scans priced out`,
    );
  });
});

test.serial("distributed HNSW search: recall@k against exact search of at least 0.95 over every shard", async (t) => {
  const recalls: number[] = [];
  await asApp(async (client) => {
    for (let i = 0; i < 30; i++) {
      const vector = vectorLiteral(queryVectors.nextVector());
      const sql = `SELECT key FROM ${TABLE} WHERE namespace LIKE '${NAMESPACE_PREFIX}%' ORDER BY embedding <=> $1::vector LIMIT ${K}`;
      const approximate = (await client.query<{ key: string }>(sql, [vector])).rows.map((r) => r.key);
      await client.query("BEGIN");
      // SET LOCAL reaches the shards (citus.propagate_set_commands = local, set by the migrations).
      await client.query("SET LOCAL enable_indexscan = off");
      const exact = (await client.query<{ key: string }>(sql, [vector])).rows.map((r) => r.key);
      await client.query("COMMIT");
      t.is(exact.length, K);
      recalls.push(recallAtK(approximate, exact, K));
    }
  });
  const mean = recalls.reduce((a, b) => a + b, 0) / recalls.length;
  t.log(`recall@${K} over ${recalls.length} queries, ${DATA.rows} rows in ${config.shardCount} shards: mean ${mean.toFixed(3)}, min ${Math.min(...recalls).toFixed(2)}`);
  t.true(mean >= 0.95, `mean recall ${mean}`);
});

test.serial("a search filtered on one namespace returns k rows whenever the namespace holds k", async (t) => {
  const short: string[] = [];
  await asApp(async (client) => {
    for (let index = 0; index < DATA.namespaces; index++) {
      const rows = await client.query(`SELECT key FROM ${TABLE} WHERE namespace = $1 ORDER BY embedding <=> $2::vector LIMIT ${K}`, [
        namespaceOf(index),
        vectorLiteral(queryVectors.nextVector()),
      ]);
      if (rows.rowCount !== K) short.push(`${namespaceOf(index)}: ${rows.rowCount}`);
    }
  });
  t.deepEqual(short, [], `namespaces (each holds ${DATA.rows / DATA.namespaces} rows) that returned fewer than ${K}`);
});

test.serial("an embedding search can never find (NULL or all zeros) is refused at write time", async (t) => {
  await asApp(async (client) => {
    for (const embedding of [null, vectorLiteral(new Float32Array(config.embeddingDimensions))]) {
      const error = await t.throwsAsync(
        client.query(`INSERT INTO ${TABLE} (namespace, key, content, embedding) VALUES ($1, 'unsearchable', '', $2::vector)`, [namespaceOf(0), embedding]),
      );
      t.regex(error!.message, /memory_entries_embedding_searchable/);
    }
  });
});

test.serial("SET LOCAL of a search setting reaches the shards in an application transaction; nothing is left in the pooled session", async (t) => {
  const onShards = (filter: string) =>
    `SELECT array_agg(DISTINCT setting) AS settings FROM (SELECT current_setting('hnsw.ef_search') AS setting FROM ${TABLE} ${filter}) AS s`;
  await asApp(async (client) => {
    await client.query("BEGIN");
    await client.query("SET LOCAL hnsw.ef_search = 7");
    const one = await client.query(onShards("WHERE namespace = $1"), [namespaceOf(3)]);
    const all = await client.query(onShards(""));
    await client.query("COMMIT");
    t.deepEqual(one.rows[0].settings, ["7"], "the shard of one namespace");
    t.deepEqual(all.rows[0].settings, ["7"], "every shard");
    const after = await client.query(onShards(""));
    t.deepEqual(after.rows[0].settings, [String(config.hnswEfSearch)], "the database setting again after the transaction");
  });
});

test.serial("search settings hold on every worker primary, from the database level", async (t) => {
  for (let group = 1; group <= config.workerGroups; group++) {
    const leader = (await cluster.leader(group))!;
    const setting = await withClient(cluster.nodeUrl(leader, config.database), async (client) => (await client.query("SHOW hnsw.ef_search")).rows[0]);
    t.deepEqual(setting, { "hnsw.ef_search": String(config.hnswEfSearch) }, `worker group ${group} (${leader.name})`);
  }
});

for (const group of [1, 0]) {
  const what = group === 0 ? "the coordinator" : `worker group ${group}`;
  test.serial(`failover of ${what}'s primary under distributed writes through PgBouncer: new primary, pg_dist_node follows, 0 lost, old primary rejoins`, async (t) => {
    const result = await failoverUnderWrites(cluster, group);
    t.log(
      `${result.oldLeader} -> ${result.newLeader}: writes resumed ${result.secondsToFirstWrite.toFixed(1)} s after the kill; ` +
        `${result.acknowledgedWrites} acknowledged, ${result.writeErrors} failed attempts, ${result.lostWrites.length} lost`,
    );
    t.not(result.newLeader, result.oldLeader);
    t.true(result.acknowledgedWrites > 20);
    t.deepEqual(result.lostWrites, [], "every acknowledged write is present");
    t.true(result.oldLeaderRejoinedAsReplica, "the old primary streams again as a replica");
    if (group > 0) {
      t.is(result.distNodeAddress, result.newLeaderAddress, "pg_dist_node names the new primary");
      // Citus refused DDL until it had synced its metadata to the new primary; failoverUnderWrites
      // waited for that, so a distributed table can be created now.
      t.log(`Citus metadata synced to every worker ${result.timeline.metadataSynced} s after the kill (first write ${result.secondsToFirstWrite.toFixed(1)} s)`);
      t.not(result.timeline.metadataSynced, null);
      await asSuperuser(async (client) => {
        await client.query("DROP TABLE IF EXISTS failover_ddl_check");
        await client.query("CREATE TABLE failover_ddl_check (namespace text NOT NULL, id int NOT NULL)");
        await client.query("SELECT create_distributed_table('failover_ddl_check', 'namespace')");
        await client.query("DROP TABLE failover_ddl_check");
      });
    }
    // The database-level search settings are in the catalog, so the promoted standby has them.
    const leader = (await cluster.leader(group))!;
    const setting = await withClient(cluster.nodeUrl(leader, config.database), async (client) => (await client.query("SHOW hnsw.ef_search")).rows[0]);
    t.deepEqual(setting, { "hnsw.ef_search": String(config.hnswEfSearch) });
  });
}

// The client path's guarantees beyond failover: quorum commit in force, and a read-only pool that
// drops a replica lagging past readOnlyMaxLagBytes and takes it back once it catches up.
import test from "ava";
import pg from "pg";
import { groupSynchronousMode } from "../../components/render/index.ts";
import { pollUntil, sleep } from "../../local/processes.ts";
import { ContinuousWriter } from "../../local/writer.ts";
import { runningCluster } from "./context.ts";
import { request } from "../../components/https.ts";
import { quietClient } from "../../components/pg-client.ts";

const cluster = runningCluster();

test.serial("Patroni runs every group in the configured synchronous mode (quorum: on in groups of two), with the shipped timings", async (t) => {
  for (let group = 0; group < cluster.topology.groups.length; group++) {
    const leader = (await cluster.leader(group))!;
    const config = JSON.parse((await request(`${cluster.restUrl(leader)}/config`)).text) as Record<string, unknown>;
    const mode = groupSynchronousMode(cluster.config.synchronousMode, cluster.topology.groups[group].length);
    t.like(config, {
      synchronous_mode: mode === "quorum" ? "quorum" : mode === "on",
      ttl: cluster.config.patroniTtl,
      loop_wait: cluster.config.patroniLoopWait,
      retry_timeout: cluster.config.patroniRetryTimeout,
    });
  }
});

async function withNode<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = quietClient({ connectionString: url, connectionTimeoutMillis: 3000 });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** The PID of a replica's startup process, the one that replays WAL. */
async function startupPid(url: string): Promise<number> {
  return withNode(url, async (c) => Number((await c.query("SELECT pid FROM pg_stat_activity WHERE backend_type = 'startup'")).rows[0].pid));
}

// Replay is paused by stopping the startup process (SIGSTOP): pg_wal_replay_pause() would not hold,
// as Patroni resumes paused replay on every loop outside its own pause mode (Patroni 4, ha.py).
test.serial("a coordinator replica whose replay is paused leaves the read-only pool past the lag bound and returns once it catches up", async (t) => {
  const leader = (await cluster.leader(0))!;
  const replica = cluster.topology.groups[0].find((n) => n.name !== leader.name)!;
  const inPool = async () => (await cluster.haproxyServerStates("coordinator_replicas")).get(replica.name)?.startsWith("UP") ?? false;
  t.true(await pollUntil(30000, 250, async () => ((await inPool()) ? true : undefined)), "in the pool before");

  const table = "read_pool_writes";
  await ContinuousWriter.createTable(cluster.primaryUrl(cluster.config.database), table, "app");
  const startup = await startupPid(cluster.nodeUrl(replica));
  process.kill(startup, "SIGSTOP");
  const writer = new ContinuousWriter({ table, connectionString: async () => cluster.pgbouncerUrl("app") });
  writer.start();
  // Padding makes the WAL grow past the bound quickly.
  await withNode(cluster.primaryUrl(cluster.config.database), (c) =>
    c.query(`CREATE TABLE IF NOT EXISTS read_pool_padding AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 20000) AS g`),
  );
  let left: boolean | undefined;
  try {
    left = await pollUntil(30000, 250, async () => ((await inPool()) ? undefined : true));
  } finally {
    process.kill(startup, "SIGCONT");
  }
  const lagged = Date.now();
  const back = await pollUntil(30000, 250, async () => ((await inPool()) ? true : undefined));
  await writer.stop();
  await withNode(cluster.primaryUrl(cluster.config.database), (c) => c.query("DROP TABLE read_pool_padding"));
  t.true(left, `${replica.name} left the read-only pool while more than ${cluster.config.readOnlyMaxLagBytes} bytes behind`);
  t.true(back, `${replica.name} came back after replay resumed`);
  t.log(`${replica.name}: out of the read-only pool while paused; back ${((Date.now() - lagged) / 1000).toFixed(1)} s after replay resumed`);
  await sleep(500);
});

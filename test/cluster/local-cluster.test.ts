// Bootstrap, failover and etcd loss on the real local cluster (Patroni, etcd, PostgreSQL, HAProxy,
// PgBouncer), started by test/cluster/harness.ts from the same render functions that ship.
import test from "ava";
import { parse } from "yaml";
import { readFileSync } from "node:fs";
import { sleep } from "../../local/processes.ts";
import { runningCluster } from "./context.ts";
import { quietClient } from "../../components/pg-client.ts";

const cluster = runningCluster();

test("every rendered Patroni config is the shipped Citus rendering and passed patroni --validate-config", (t) => {
  const validated = JSON.parse(process.env.DPC_TEST_VALIDATED_CONFIGS ?? "[]") as string[];
  t.is(validated.length, cluster.nodes.length);
  const configs = validated.map((f) => parse(readFileSync(f, "utf8")));
  t.deepEqual(
    configs.map((c) => c.citus.group).sort(),
    cluster.nodes.map((n) => n.group).sort(),
  );
  t.true(configs.every((c) => c.scope === cluster.topology.scope && c.citus.database === cluster.config.database), "one scope and the Citus database on every node");
});

test("bootstrap: one leader per group, every replica streaming, a query through PgBouncer reaches the coordinator primary", async (t) => {
  t.log(`cold bootstrap to healthy: ${process.env.DPC_TEST_CLUSTER_UP_SECONDS} s`);
  for (const group of await cluster.status()) {
    const leaders = group.members.filter((m) => m.role === "leader");
    t.is(leaders.length, 1, `${group.name} has one leader`);
    t.is(group.members.length, cluster.topology.groups[group.group].length);
    t.is(await cluster.streamingReplicas(cluster.node(leaders[0].name)), group.members.length - 1, `${group.name} replicas stream`);
  }
  const coordinatorLeader = await cluster.leader(0);
  const result = await cluster.queryThroughPooler("SELECT host(inet_server_addr()) AS address, pg_is_in_recovery() AS standby, current_user AS who");
  t.deepEqual(result.rows[0], { address: cluster.addressing.postgres(coordinatorLeader!).connect, standby: false, who: "app" });
});

async function leaders(): Promise<(string | undefined)[]> {
  return Promise.all(cluster.topology.groups.map(async (_, group) => (await cluster.leader(group))?.name));
}

test("losing 1 of 3 etcd members changes no leader", async (t) => {
  const before = await leaders();
  t.true(before.every((name) => name !== undefined));
  const lost = cluster.topology.etcd[0];
  cluster.killEtcd(lost);
  // Longer than a leader key's TTL: a leader that could not renew its key would have lost it by now.
  await sleep((cluster.config.patroniTtl + cluster.config.patroniLoopWait * 2) * 1000);
  t.deepEqual(await leaders(), before);
  await cluster.queryThroughPooler("SELECT 1");
  cluster.startEtcd(lost);
  await cluster.waitEtcdHealthy();
});

test("losing 2 of 3 etcd members and bringing them back recovers every group and the client path", async (t) => {
  const lost = cluster.topology.etcd.slice(1);
  lost.forEach((member) => cluster.killEtcd(member));
  // Without a DCS majority the primaries cannot renew their leader keys; wait past the TTL.
  await sleep((cluster.config.patroniTtl + cluster.config.patroniLoopWait * 2) * 1000);
  const duringLoss = await cluster.queryThroughPooler("SELECT pg_is_in_recovery() AS standby").then(
    (r) => (r.rows[0].standby ? "reached a standby" : "reached a primary"),
    (e: Error) => `refused: ${e.message}`,
  );
  t.log(`a query through PgBouncer with etcd at 1 of 3: ${duringLoss}`);
  lost.forEach((member) => cluster.startEtcd(member));
  await cluster.waitEtcdHealthy();
  for (let group = 0; group < cluster.topology.groups.length; group++) await cluster.waitGroupHealthy(group, 120000);
  const deadline = Date.now() + 30000;
  let answer: unknown;
  while (Date.now() < deadline) {
    answer = await cluster.queryThroughPooler("SELECT pg_is_in_recovery() AS standby").then((r) => r.rows[0], () => undefined);
    if (answer) break;
    await sleep(250);
  }
  t.deepEqual(answer, { standby: false }, "writes go to a primary again through the same PgBouncer endpoint");
});

test("a wrong password is refused through PgBouncer with a message naming the cause", async (t) => {
  const url = new URL(cluster.pgbouncerUrl("app"));
  url.password = "not-the-password";
  const client = quietClient({ connectionString: url.toString(), connectionTimeoutMillis: 3000 });
  const error = await t.throwsAsync(client.connect());
  // PgBouncer verifies the client itself (SCRAM) and answers with its own wording.
  t.regex(error!.message, /SASL authentication failed|password authentication failed for user "app"/);
  await client.end().catch(() => undefined);
});

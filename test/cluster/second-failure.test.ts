// No leaderless window and no endless wait: a second failure right after a failover still ends with
// a leader and no lost write, and a two-member group that loses its standby, even right after naming
// it synchronous, takes writes again in a bounded time. Writes go through PgBouncer as `app`.
import { readFileSync } from "node:fs";
import test from "ava";
import { request } from "../../components/https.ts";
import type { PostgresNode } from "../../components/spec.ts";
import { SYNCHRONOUS_ROLES } from "../../local/cluster.ts";
import { clusterMembers, postPatroni } from "../../local/patroni-api.ts";
import { pollUntil } from "../../local/processes.ts";
import { ContinuousWriter, missingWrites } from "../../local/writer.ts";
import { runningCluster } from "./context.ts";

const cluster = runningCluster();
const adminUrl = () => cluster.primaryUrl(cluster.config.database);

async function writerOn(group: number, table: string): Promise<{ writer: ContinuousWriter; bucket: string }> {
  await ContinuousWriter.createTable(adminUrl(), table, "app");
  const bucket = await ContinuousWriter.bucketOnGroup(adminUrl(), table, group === 0 ? 1 : group);
  const writer = new ContinuousWriter({ table, bucket, connectionString: async () => cluster.pgbouncerUrl("app") });
  writer.start();
  return { writer, bucket };
}

async function writesResume(writer: ContinuousWriter, since: number, timeoutMs = 90000): Promise<number> {
  const at = await pollUntil(timeoutMs, 100, async () => writer.recoveredAfterFailure(since));
  if (at === undefined) throw new Error(`writes did not resume within ${timeoutMs / 1000} s`);
  return (at - since) / 1000;
}

/** A group's /sync key in etcd: Patroni's quorum state (leader, voters as sync_standby, quorum). */
async function syncKey(group: number): Promise<string> {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  // etcd speaks TLS and wants a client certificate: the operator's, registered by LocalCluster.
  const answer = await request(`${cluster.etcdUrl(cluster.topology.etcd[0])}/v3/kv/range`, {
    method: "POST",
    body: JSON.stringify({ key: b64(`/service/${cluster.topology.scope}/${group}/sync`) }),
    timeoutMs: 3000,
  });
  const body = JSON.parse(answer.text) as { kvs?: { value: string }[] };
  return body.kvs?.[0] ? Buffer.from(body.kvs[0].value, "base64").toString() : "(none)";
}

/** A node's log lines from `from` to `to` (ms since epoch) that match `pattern`, times as HH:MM:SS.mmm. */
function logLines(node: PostgresNode, from: number, to: number, pattern: RegExp): string[] {
  return readFileSync(cluster.logFile(node.name), "utf8")
    .split("\n")
    .filter((line) => {
      const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)[.,](\d{3})/.exec(line);
      const at = m ? Date.parse(`${m[1]}T${m[2]}.${m[3]}Z`) : NaN;
      return at >= from && at <= to && pattern.test(line);
    })
    .map((line) => line.slice(11, 23).replace(",", ".") + line.slice(23).replace(/^\S* ?(UTC )?(\[\d+\] )?/, " "));
}

// In the first test the first node killed comes back soon, as Docker's restart policy or a
// StatefulSet brings it back; in the second it stays down, and the last member takes over alone.
/**
 * Waits for the group to be healthy again. A member that cannot follow the new timeline (seen here:
 * "requested WAL segment ... has already been removed" after two failovers in a row) is
 * reinitialized through Patroni, as an operator would, and said loudly: a finding, not a pass.
 */
async function recoverGroup(t: { log: (message: string) => void }, group: number): Promise<void> {
  try {
    await cluster.waitGroupHealthy(group, 90000);
    return;
  } catch {
    const members = (await clusterMembers(cluster.topology.groups[group].map((n) => cluster.restUrl(n)))) ?? [];
    for (const member of members.filter((m) => m.role !== "leader" && m.state !== "streaming")) {
      t.log(`NOTE: ${member.name} did not follow the new primary within 90 s (state ${member.state}, lag ${member.lag}); reinitializing it through Patroni`);
      await postPatroni(cluster.restUrl(cluster.node(member.name)), "/reinitialize", cluster.restApiAuth(), { force: true });
    }
    await cluster.waitGroupHealthy(group, 180000);
  }
}

// First, on a healthy group: the two-failure tests below can leave the group rejoining or reinitializing
// a member, which is not what a crash of PostgreSQL alone is about.
test.serial("a crash of the coordinator primary's PostgreSQL alone (Patroni alive): writes come back, 0 lost", async (t) => {
  const { writer, bucket } = await writerOn(0, "postgres_crash_writes");
  await pollUntil(15000, 100, async () => (writer.acknowledgedCount >= 20 ? true : undefined));
  const leader = (await cluster.leader(0))!;
  const killedAt = Date.now();
  cluster.killPostgres(leader);
  try {
    // PgBouncer may hold a write through a restart this short instead of failing it: an outage here
    // ends at the first acknowledgement after a failed write or after a stall (recoveredAfter).
    const back = await pollUntil(60000, 100, async () => writer.recoveredAfter(killedAt));
    if (back === undefined) throw new Error("writes did not resume within 60 s");
    const seconds = (back - killedAt) / 1000;
    // Writes may be back a moment before Patroni reports its restarted PostgreSQL as running.
    const after = (await pollUntil(30000, 100, async () => cluster.leader(0)))!;
    const result = await writer.stop();
    t.log(
      `postmaster of ${leader.name} killed: writes back after ${seconds.toFixed(1)} s on ${after.name} ` +
        `(${after.name === leader.name ? "Patroni restarted PostgreSQL in place" : "a failover"}); ${result.acknowledged.length} acknowledged, ${result.errors} failed attempts`,
    );
    t.deepEqual(await missingWrites(adminUrl(), "postgres_crash_writes", result.acknowledged, bucket), []);
  } finally {
    await writer.stop();
    await recoverGroup(t, 0);
  }
});

test.serial("coordinator: the new primary killed as soon as writes resume after a failover: the group elects another, 0 lost", async (t) => {
  const { writer, bucket } = await writerOn(0, "second_failure_writes");
  await pollUntil(15000, 100, async () => (writer.acknowledgedCount >= 20 ? true : undefined));
  const killed: PostgresNode[] = [];
  try {
    const first = (await cluster.leader(0))!;
    const firstAt = Date.now();
    cluster.killNode(first);
    // Back as soon as another member holds the leader key (back any sooner, it would find its own
    // key still valid and simply lead again).
    await pollUntil(90000, 100, async () => ((await cluster.leader(0))?.name !== first.name && (await cluster.leader(0)) ? true : undefined));
    cluster.startPatroni(first);
    const firstSeconds = await writesResume(writer, firstAt);
    const second = (await cluster.leader(0))!;
    t.not(second.name, first.name);
    const secondAt = Date.now();
    cluster.killNode(second);
    killed.push(second);
    const secondSeconds = await writesResume(writer, secondAt);
    const third = (await cluster.leader(0))!;
    t.not(third.name, second.name);
    const result = await writer.stop();
    t.log(
      `${first.name} killed: writes back after ${firstSeconds.toFixed(1)} s on ${second.name}; ${second.name} killed at once: ` +
        `writes back after ${secondSeconds.toFixed(1)} s on ${third.name}; ${result.acknowledged.length} acknowledged, ${result.errors} failed attempts`,
    );
    t.deepEqual(await missingWrites(adminUrl(), "second_failure_writes", result.acknowledged, bucket), [], "every acknowledged write is present");
  } finally {
    await writer.stop();
    killed.forEach((node) => cluster.startPatroni(node));
    await recoverGroup(t, 0);
  }
});

test.serial("coordinator: the first failed primary stays down and the new one is killed as soon as writes resume: the last member takes over alone (a known gap: sometimes only once the killed members are back), 0 lost", async (t) => {
  const { writer, bucket } = await writerOn(0, "second_failure_alone_writes");
  const killed: PostgresNode[] = [];
  try {
    await pollUntil(15000, 100, async () => (writer.acknowledgedCount >= 20 ? true : undefined));
    // Only a member the /sync key names, with quorum 0, may take over alone: start from the steady
    // state, every standby a voter and quorum 0. A member that has just rejoined (the tests above
    // restart and reinitialize members) streams a moment before Patroni names it, and is counted with
    // quorum 1 until it has caught up (quorum.py quorum_update, adjust_quorum); a leader killed then
    // leaves the survivor waiting for the first one back (seen twice).
    const steady = await pollUntil(90000, 200, async () => {
      const sync = JSON.parse((await syncKey(0)).replace("(none)", "{}")) as { leader?: string; quorum?: number; sync_standby?: string | null };
      const voters = (sync.sync_standby ?? "").split(",").filter((v) => v.length > 0);
      const standbys = cluster.topology.groups[0].filter((n) => n.name !== sync.leader);
      return sync.quorum === 0 && standbys.every((n) => voters.includes(n.name)) ? true : undefined;
    });
    t.true(steady, `every standby a voter and quorum 0 before the first kill (/sync ${await syncKey(0)})`);
    const first = (await cluster.leader(0))!;
    const firstAt = Date.now();
    cluster.killNode(first);
    killed.push(first);
    const firstSeconds = await writesResume(writer, firstAt);
    const second = (await cluster.leader(0))!;
    t.not(second.name, first.name);
    const secondAt = Date.now();
    cluster.killNode(second);
    killed.push(second);
    // Whether the survivor may take over alone is decided by the /sync key the dead leader left
    // (ha.py _is_healthiest_node): kept for the log, with how the new leader's quorum state moved
    // and when the survivor streamed from it.
    const survivor = cluster.topology.groups[0].find((n) => n.name !== first.name && n.name !== second.name)!;
    const syncAtKill = await syncKey(0);
    const evidence = [
      ...logLines(second, firstAt, secondAt, /promoted self|Setting (leader|synchronous replication)/).map((l) => `${second.name}: ${l}`),
      ...logLines(survivor, firstAt, secondAt, /started streaming WAL|restarted WAL streaming|following new leader/).map((l) => `${survivor.name}: ${l}`),
    ].sort((a, b) => a.slice(a.indexOf(": ") + 2).localeCompare(b.slice(b.indexOf(": ") + 2)));
    t.log(`/sync when ${second.name} was killed: ${syncAtKill}; ${evidence.join(" | ")}`);
    // Every standby acknowledges (synchronous_node_count = members - 1), so the survivor holds every
    // acknowledged commit and needs nobody's vote: it takes over once the leader key expires.
    // Known gap (issue 12): a killed leader that had found no standby streaming on two of its HA
    // loops had emptied the /sync voters (and committed alone, non-strict): then no member but it may
    // lead (ha.py _is_healthiest_node; see the README, "Quorum commit"), not even the first one back.
    // Said loudly, then both killed members are started again, as a restart policy or a StatefulSet
    // would, and writes must come back with nothing lost.
    const aloneAt = await pollUntil(60000, 100, async () => writer.recoveredAfterFailure(secondAt));
    const alone = aloneAt !== undefined;
    if (!alone) {
      t.log(`NOTE (issue 12): ${second.name} killed with ${first.name} down: the last member did not take over alone within 60 s (/sync now ${await syncKey(0)}); starting both again`);
      killed.splice(0).forEach((node) => cluster.startPatroni(node)); // running again: not to be started in `finally`
    }
    const secondSeconds = alone ? (aloneAt - secondAt) / 1000 : await writesResume(writer, secondAt, 120000);
    const third = (await cluster.leader(0))!;
    if (alone) t.is(third.name, survivor.name, "the last member took over alone");
    const result = await writer.stop();
    t.log(
      `${first.name} killed and left down: writes back after ${firstSeconds.toFixed(1)} s on ${second.name}; ${second.name} killed at once: ` +
        `writes back after ${secondSeconds.toFixed(1)} s on ${third.name}${alone ? " alone" : " (only once the killed members were back: the leaderless window)"}; ${result.acknowledged.length} acknowledged, ${result.errors} failed attempts`,
    );
    if (alone) t.true(secondSeconds <= cluster.config.patroniTtl + 5, `the second failover is bounded like the first (ttl ${cluster.config.patroniTtl} s): ${secondSeconds.toFixed(1)} s`);
    t.deepEqual(await missingWrites(adminUrl(), "second_failure_alone_writes", result.acknowledged, bucket), [], "every acknowledged write is present");
  } finally {
    await writer.stop();
    killed.forEach((node) => cluster.startPatroni(node));
    await recoverGroup(t, 0);
  }
});

test.serial("a two-member worker group whose standby dies right after being named synchronous takes writes again within a bounded time", async (t) => {
  const group = 1;
  const nodes = cluster.topology.groups[group];
  const leader = (await cluster.leader(group))!;
  const standby = nodes.find((n) => n.name !== leader.name)!;
  // Restart the standby and kill it again the moment Patroni names it synchronous.
  cluster.killNode(standby);
  const { writer, bucket } = await writerOn(group, "standby_loss_writes");
  cluster.startPatroni(standby);
  const named = await pollUntil(120000, 50, async () => {
    const members = await clusterMembers(nodes.map((n) => cluster.restUrl(n)));
    return members?.some((m) => m.name === standby.name && SYNCHRONOUS_ROLES.includes(m.role)) ? true : undefined;
  });
  t.true(named, `${standby.name} was named synchronous again`);
  const killedAt = Date.now();
  cluster.killNode(standby);
  try {
    // A write that commits now is on the primary alone: the group did not wait for the dead standby.
    const before = writer.acknowledgedCount;
    const waited = await pollUntil(120000, 50, async () => (writer.acknowledgedCount > before + 5 ? (Date.now() - killedAt) / 1000 : undefined));
    t.truthy(waited, "writes go on without the standby");
    t.log(`${standby.name} killed right after it was named synchronous: writes committed again ${waited?.toFixed(1)} s later (ttl ${cluster.config.patroniTtl} s)`);
    t.true(waited! <= cluster.config.patroniTtl + 10, `bounded by the ttl and two HA loops: ${waited} s`);
  } finally {
    const result = await writer.stop();
    cluster.startPatroni(standby);
    await cluster.waitGroupHealthy(group, 180000);
    t.deepEqual(await missingWrites(adminUrl(), "standby_loss_writes", result.acknowledged, bucket), []);
  }
});

// Failover under continuous writes, as the tests and the drill run it: kill a group's primary
// (SIGKILL of Patroni and postmaster), measure until writes succeed again, count lost writes,
// restart the old node and wait until it streams again as a replica.
import type { PostgresNode } from "../components/spec.ts";
import type { LocalCluster } from "./cluster.ts";
import { pollUntil, sleep } from "./processes.ts";
import { ContinuousWriter, missingWrites } from "./writer.ts";
import { FailoverSampler, type FailoverTimeline } from "./failover-timeline.ts";
import { quietClient } from "../components/pg-client.ts";

export interface FailoverResult {
  group: number;
  oldLeader: string;
  newLeader: string;
  /** From the kill to the first acknowledged write after the outage it caused. */
  secondsToFirstWrite: number;
  acknowledgedWrites: number;
  writeErrors: number;
  lostWrites: number[];
  /** The old primary came back as a replica streaming from the new one. */
  oldLeaderRejoinedAsReplica: boolean;
  /** For a worker group: the address pg_dist_node lists for the group once writes resumed. */
  distNodeAddress?: string;
  /** For a worker group: the new leader's address (pg_dist_node must name it). */
  newLeaderAddress: string;
  /** Where the seconds to the first write went: key expiry, election, promotion, routing. */
  timeline: FailoverTimeline;
}

async function waitUntil(what: string, timeoutMs: number, condition: () => Promise<boolean> | boolean): Promise<void> {
  const met = await pollUntil(timeoutMs, 100, async () => ((await condition()) ? true : undefined));
  if (!met) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
}

/** The address pg_dist_node lists as worker group `group`'s primary, read on the coordinator. */
export async function distNodeAddress(cluster: LocalCluster, group: number): Promise<string | undefined> {
  const client = quietClient({ connectionString: cluster.primaryUrl(cluster.config.database), connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    const result = await client.query<{ nodename: string }>(
      "SELECT nodename FROM pg_dist_node WHERE groupid = $1 AND noderole = 'primary' AND isactive",
      [group],
    );
    return result.rows[0]?.nodename;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Kills a group's primary (SIGKILL of Patroni and postmaster) while the application role inserts,
 * one row per transaction, through PgBouncer -> HAProxy -> coordinator into a distributed table.
 * The rows of a worker-group failover hash to a shard on that group, so every write needs it; for
 * the coordinator group they go to worker group 1 and every write needs the coordinator.
 */
export async function failoverUnderWrites(cluster: LocalCluster, group: number): Promise<FailoverResult> {
  const table = `failover_writes_g${group}`;
  const adminUrl = cluster.primaryUrl(cluster.config.database);
  await ContinuousWriter.createTable(adminUrl, table, "app");
  const bucket = await ContinuousWriter.bucketOnGroup(adminUrl, table, group === 0 ? 1 : group);
  const writer = new ContinuousWriter({ table, bucket, connectionString: async () => cluster.pgbouncerUrl("app") });

  const oldLeader = await cluster.leader(group);
  if (!oldLeader) throw new Error(`group ${group} has no leader before the failover`);
  writer.start();
  await waitUntil("first writes before the kill", 15000, () => writer.acknowledgedCount >= 20);

  const killedAt = Date.now();
  cluster.killNode(oldLeader);
  const sampler = new FailoverSampler(cluster, group, oldLeader, killedAt);
  let newLeader: PostgresNode | undefined;
  try {
    await waitUntil("a new leader", 60000, async () => {
      newLeader = await cluster.leader(group);
      return newLeader !== undefined && newLeader.name !== oldLeader.name;
    });
    await waitUntil("writes after the failover", 60000, () => writer.recoveredAfterFailure(killedAt) !== undefined);
    await sleep(1000); // keep writing on the new primary for a moment
    // A worker group's failover ends for DDL only once Citus has synced its metadata again.
    if (group > 0) await waitUntil("Citus metadata synced to every worker", 90000, () => sampler.timeline.metadataSynced !== null);
  } finally {
    await sampler.stop();
    // The old node comes back, as a supervisor (restart policy, StatefulSet) would bring it back.
    cluster.startPatroni(oldLeader);
  }
  const result = await writer.stop();
  const firstWrite = writer.recoveredAfterFailure(killedAt)!;
  const registered = group === 0 ? undefined : await distNodeAddress(cluster, group);

  let rejoined = false;
  try {
    const members = await cluster.waitGroupHealthy(group, 90000);
    const old = members.find((m) => m.name === oldLeader.name);
    rejoined = old !== undefined && old.role !== "leader";
  } catch {
    rejoined = false;
  }
  return {
    group,
    oldLeader: oldLeader.name,
    newLeader: newLeader!.name,
    newLeaderAddress: cluster.addressing.postgres(newLeader!).connect,
    distNodeAddress: registered,
    secondsToFirstWrite: (firstWrite - killedAt) / 1000,
    acknowledgedWrites: result.acknowledged.length,
    writeErrors: result.errors,
    lostWrites: await missingWrites(cluster.primaryUrl(cluster.config.database), table, result.acknowledged, bucket),
    oldLeaderRejoinedAsReplica: rejoined,
    timeline: sampler.timeline,
  };
}

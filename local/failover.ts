// Failover under continuous writes, as the tests and the drill run it: kill a group's primary
// (SIGKILL of Patroni and postmaster), measure until writes succeed again, count lost writes,
// restart the old node and wait until it streams again as a replica.
import pg from "pg";
import type { PostgresNode } from "../components/spec.ts";
import type { LocalCluster } from "./cluster.ts";
import { pollUntil, sleep } from "./processes.ts";
import { ContinuousWriter, missingWrites, type WriterTarget } from "./writer.ts";

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
}

/**
 * Where the writes go. The coordinator group is written through PgBouncer -> HAProxy (the client
 * path). A worker group has no such path of its own: with Citus the coordinator reaches a worker's
 * primary through pg_dist_node, which Patroni keeps current; without Citus we ask Patroni, the same
 * source, for the leader on every reconnect.
 */
export function writeTarget(cluster: LocalCluster, group: number, table: string): WriterTarget {
  if (group === 0) return { table, connectionString: async () => cluster.pgbouncerUrl("app") };
  return {
    table,
    connectionString: async () => {
      const leader = await cluster.leader(group);
      return cluster.nodeUrl(leader ?? cluster.topology.groups[group][0], cluster.config.database);
    },
  };
}

async function waitUntil(what: string, timeoutMs: number, condition: () => Promise<boolean> | boolean): Promise<void> {
  const met = await pollUntil(timeoutMs, 100, async () => ((await condition()) ? true : undefined));
  if (!met) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
}

export async function failoverUnderWrites(cluster: LocalCluster, group: number): Promise<FailoverResult> {
  const table = `failover_writes_g${group}`;
  const target = writeTarget(cluster, group, table);
  const adminUrl = async () => {
    const leader = (await cluster.leader(group)) ?? cluster.topology.groups[group][0];
    return cluster.nodeUrl(leader, cluster.config.database);
  };
  await ContinuousWriter.createTable(await adminUrl(), table);
  if (group === 0) {
    // The application role writes through PgBouncer: it needs rights on the table.
    const client = new pg.Client({ connectionString: await adminUrl() });
    await client.connect();
    await client.query(`GRANT ALL ON ${table} TO app`);
    await client.end();
  }

  const oldLeader = await cluster.leader(group);
  if (!oldLeader) throw new Error(`group ${group} has no leader before the failover`);
  const writer = new ContinuousWriter(target);
  writer.start();
  await waitUntil("first writes before the kill", 15000, () => writer.acknowledgedCount >= 20);

  const killedAt = Date.now();
  cluster.killNode(oldLeader);
  let newLeader: PostgresNode | undefined;
  try {
    await waitUntil("a new leader", 60000, async () => {
      newLeader = await cluster.leader(group);
      return newLeader !== undefined && newLeader.name !== oldLeader.name;
    });
    await waitUntil("writes after the failover", 60000, () => writer.recoveredAfter(killedAt) !== undefined);
    await sleep(1000); // keep writing on the new primary for a moment
  } finally {
    // The old node comes back, as a supervisor (restart policy, StatefulSet) would bring it back.
    cluster.startPatroni(oldLeader);
  }
  const result = await writer.stop();
  const firstWrite = writer.recoveredAfter(killedAt)!;

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
    secondsToFirstWrite: (firstWrite - killedAt) / 1000,
    acknowledgedWrites: result.acknowledged.length,
    writeErrors: result.errors,
    lostWrites: await missingWrites(await adminUrl(), table, result.acknowledged),
    oldLeaderRejoinedAsReplica: rejoined,
  };
}

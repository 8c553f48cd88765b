// A planned switchover that clients only see as a pause: for the coordinator group PgBouncer is
// PAUSEd (clients wait, none fails), its server connections are closed (RECONNECT), Patroni switches
// over, and PgBouncer RESUMEs only once HAProxy routes read-write traffic to the new primary alone and
// it has left recovery. A worker group's switchover is held by Patroni itself, through Citus
// (citus_update_node with a cooldown), so PgBouncer stays open. The rolling changes reuse this.
import pg from "pg";
import type { PostgresNode } from "../components/spec.ts";
import { SYNCHRONOUS_ROLES, type LocalCluster } from "./cluster.ts";
import { clusterMembers, leaderOf, postPatroni } from "./patroni-api.ts";
import { pollUntil } from "./processes.ts";
import { outOfRecovery } from "./failover-timeline.ts";

export interface SwitchoverResult {
  group: number;
  from: string;
  to: string;
  /** From the switchover request until the new primary answered writes (PgBouncer resumed). */
  seconds: number;
  /** HAProxy read-write routing sampled while PgBouncer let clients through: more than one UP is a fault. */
  maxRoutableWhileOpen: number;
}

/** Runs one PgBouncer admin console command (PAUSE, RESUME, RECONNECT) as the superuser. */
export async function pgbouncerAdmin(cluster: LocalCluster, command: string): Promise<void> {
  const client = new pg.Client({ connectionString: cluster.pgbouncerUrl("superuser", "pgbouncer"), connectionTimeoutMillis: 3000 });
  await client.connect();
  try {
    // The admin console speaks the simple protocol only: no parameters.
    await client.query(command);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function requestSwitchover(cluster: LocalCluster, leader: PostgresNode, candidate: string): Promise<void> {
  await postPatroni(cluster.restUrl(leader), "/switchover", cluster.restApiAuth(), { leader: leader.name, candidate });
}

/** Names of the servers HAProxy would route read-write traffic to (not DOWN). */
export async function routableServers(cluster: LocalCluster): Promise<string[]> {
  return [...(await cluster.haproxyServerStates("coordinator_primary"))].filter(([, status]) => !status.startsWith("DOWN")).map(([server]) => server);
}

/**
 * Switches group `group` over to a standby that acknowledges commits (or `candidate`). Throws when
 * Patroni refuses, or when the new primary is not routed within `timeoutMs` (PgBouncer is resumed
 * in every case, so clients are never left paused).
 */
export async function plannedSwitchover(cluster: LocalCluster, group: number, candidate?: string, timeoutMs = 60000): Promise<SwitchoverResult> {
  const members = (await clusterMembers(cluster.topology.groups[group].map((n) => cluster.restUrl(n)))) ?? [];
  const leader = leaderOf(members);
  if (!leader) throw new Error(`group ${group} has no leader: no switchover`);
  const target = candidate ?? members.find((m) => SYNCHRONOUS_ROLES.includes(m.role) && m.state === "streaming")?.name;
  if (!target) throw new Error(`group ${group} has no synchronous standby to switch over to`);
  const gate = group === 0;
  // The demotion ends with a shutdown checkpoint: one taken now, while clients still flow, leaves it
  // little to write, which shortens the pause.
  const checkpoint = new pg.Client({ connectionString: cluster.nodeUrl(cluster.node(leader.name)), connectionTimeoutMillis: 3000 });
  await checkpoint.connect();
  await checkpoint.query("CHECKPOINT").finally(() => checkpoint.end());
  const started = Date.now();
  let maxRoutableWhileOpen = 0;
  if (gate) {
    await pgbouncerAdmin(cluster, "PAUSE");
    await pgbouncerAdmin(cluster, "RECONNECT");
  }
  try {
    await requestSwitchover(cluster, cluster.node(leader.name), target);
    const done = await pollUntil(timeoutMs, 50, async () => {
      const now = leaderOf(await clusterMembers(cluster.topology.groups[group].map((n) => cluster.restUrl(n))));
      if (now?.name !== target) return undefined;
      if (!gate) return true;
      const routable = await routableServers(cluster);
      return routable.length === 1 && routable[0] === target && (await outOfRecovery(cluster.primaryUrl(), 1000)) ? true : undefined;
    });
    if (!done) throw new Error(`switchover ${leader.name} -> ${target}: the new primary was not routed alone within ${timeoutMs / 1000} s`);
  } finally {
    if (gate) {
      maxRoutableWhileOpen = (await routableServers(cluster)).length;
      await pgbouncerAdmin(cluster, "RESUME");
    }
  }
  return { group, from: leader.name, to: target, seconds: (Date.now() - started) / 1000, maxRoutableWhileOpen };
}

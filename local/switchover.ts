// A planned switchover that clients only see as a pause: for the coordinator group PgBouncer is
// PAUSEd (clients wait, none fails), its server connections are closed (RECONNECT), Patroni switches
// over, and PgBouncer RESUMEs only once HAProxy routes read-write traffic to the new primary alone and
// it has left recovery. A worker group's switchover is held by Patroni itself, through Citus
// (citus_update_node with a cooldown), so PgBouncer stays open. The rolling changes reuse this.
import type { PostgresNode } from "../components/spec.ts";
import { pgbouncerCommand } from "../components/pgbouncer-admin.ts";
import { SYNCHRONOUS_ROLES, type LocalCluster } from "./cluster.ts";
import { clusterMembers, leaderOf, postPatroni } from "./patroni-api.ts";
import { pollUntil } from "./processes.ts";
import { outOfRecovery } from "./failover-timeline.ts";
import { quietClient } from "../components/pg-client.ts";

/** Seconds from PAUSE (the start of the pause) to each event; null when not seen before PgBouncer resumed. */
export interface SwitchoverTimeline {
  /** Coordinator: PgBouncer PAUSEd and its server connections closed (RECONNECT). */
  paused: number | null;
  /** Patroni's /switchover sent (its answer is not waited for). */
  requested: number | null;
  /** The old primary's PostgreSQL no longer answers as a primary (Patroni's demote stopped it). */
  oldPrimaryStopped: number | null;
  /** The old primary no longer holds the leader key (Patroni released it). */
  oldLeaderReleased: number | null;
  /** The candidate holds the leader key. */
  newLeaderElected: number | null;
  /** The candidate's PostgreSQL is out of recovery. */
  promoted: number | null;
  /** Coordinator: HAProxy marks the old primary DOWN in the read-write backend. */
  oldPrimaryDown: number | null;
  /** Coordinator: HAProxy marks the new primary UP in the read-write backend. */
  newPrimaryUp: number | null;
  /** Coordinator: PgBouncer RESUMEd (= `seconds`). */
  resumed: number | null;
}

export interface SwitchoverResult {
  group: number;
  from: string;
  to: string;
  /** From PAUSE (worker: the switchover request) until the new primary answered writes (PgBouncer resumed). */
  seconds: number;
  /** When the pause started, ms since the epoch (to line the timeline up with the nodes' logs). */
  startedAt: number;
  /** HAProxy read-write routing sampled while PgBouncer let clients through: more than one UP is a fault. */
  maxRoutableWhileOpen: number;
  /** Where the seconds went. */
  timeline: SwitchoverTimeline;
}

/** Runs one PgBouncer admin console command (PAUSE, RESUME, RECONNECT) as its admin user (ROLES.poolerAdmin). */
export function pgbouncerAdmin(cluster: LocalCluster, command: string): Promise<void> {
  return pgbouncerCommand(cluster.pgbouncerUrl("admin", "pgbouncer"), command, 3000);
}

/**
 * Asks the leader's Patroni for the switchover. Patroni answers only once it sees the new leader,
 * polling once a second from one second after the request (api.py poll_failover_result): waiting
 * for that answer would add up to a second to the pause, so the caller watches the cluster itself
 * and only a refusal (HTTP >= 400) matters here.
 */
function requestSwitchover(cluster: LocalCluster, leader: PostgresNode, candidate: string): Promise<string> {
  return postPatroni(cluster.restUrl(leader), "/switchover", cluster.restApiAuth(), { leader: leader.name, candidate });
}

/** Names of the servers HAProxy would route read-write traffic to (not DOWN). */
export async function routableServers(cluster: LocalCluster): Promise<string[]> {
  return [...(await cluster.haproxyServerStates("coordinator_primary"))].filter(([, status]) => !status.startsWith("DOWN")).map(([server]) => server);
}

/**
 * Switches group `group` over to a standby that acknowledges commits (or `candidate`). Throws when
 * Patroni refuses, or when the new primary is not routed within `timeoutMs` (PgBouncer is resumed
 * in every case, so clients are never left paused). For the coordinator, PgBouncer resumes as soon
 * as the old primary is DOWN in HAProxy's read-write backend, the new one UP there (alone), and a
 * connection through HAProxy lands on a node out of recovery.
 */
export async function plannedSwitchover(cluster: LocalCluster, group: number, candidate?: string, timeoutMs = 60000): Promise<SwitchoverResult> {
  const restUrls = cluster.topology.groups[group].map((n) => cluster.restUrl(n));
  const members = (await clusterMembers(restUrls)) ?? [];
  const leader = leaderOf(members);
  if (!leader) throw new Error(`group ${group} has no leader: no switchover`);
  const target = candidate ?? members.find((m) => SYNCHRONOUS_ROLES.includes(m.role) && m.state === "streaming")?.name;
  if (!target) throw new Error(`group ${group} has no synchronous standby to switch over to`);
  const gate = group === 0;
  // The demotion ends with a shutdown checkpoint: one taken now, while clients still flow, leaves it
  // little to write, which shortens the pause.
  const checkpoint = quietClient({ connectionString: cluster.nodeUrl(cluster.node(leader.name)), connectionTimeoutMillis: 3000 });
  await checkpoint.connect();
  await checkpoint.query("CHECKPOINT").finally(() => checkpoint.end());
  const timeline: SwitchoverTimeline = {
    paused: null,
    requested: null,
    oldPrimaryStopped: null,
    oldLeaderReleased: null,
    newLeaderElected: null,
    promoted: null,
    oldPrimaryDown: null,
    newPrimaryUp: null,
    resumed: null,
  };
  // The pause starts with PAUSE: clients wait from then on.
  const started = Date.now();
  const mark = (event: keyof SwitchoverTimeline) => {
    if (timeline[event] === null) timeline[event] = Number(((Date.now() - started) / 1000).toFixed(2));
  };
  let maxRoutableWhileOpen = 0;
  if (gate) {
    await pgbouncerAdmin(cluster, "PAUSE");
    await pgbouncerAdmin(cluster, "RECONNECT");
    mark("paused");
  }
  let refused: Error | undefined;
  let request: Promise<unknown> = Promise.resolve();
  try {
    request = requestSwitchover(cluster, cluster.node(leader.name), target).catch((error: Error) => {
      refused = error;
    });
    mark("requested");
    const done = await pollUntil(timeoutMs, 50, async () => {
      if (refused) throw refused;
      // Every probe at once: each sequential round trip would add to the pause.
      const [members, oldPrimary, promoted, states] = await Promise.all([
        clusterMembers(restUrls),
        timeline.oldPrimaryStopped === null ? outOfRecovery(cluster.nodeUrl(cluster.node(leader.name)), 1000) : false,
        timeline.promoted === null ? outOfRecovery(cluster.nodeUrl(cluster.node(target)), 1000) : true,
        gate ? cluster.haproxyServerStates("coordinator_primary") : new Map<string, string>(),
      ]);
      // The leader key, as /cluster reports it (role "leader"), whatever the member's state.
      const keyHolder = members?.find((m) => m.role === "leader")?.name;
      if (!oldPrimary) mark("oldPrimaryStopped");
      if (members && keyHolder !== leader.name) mark("oldLeaderReleased");
      if (keyHolder === target) mark("newLeaderElected");
      if (promoted) mark("promoted");
      if (states.get(leader.name)?.startsWith("DOWN")) mark("oldPrimaryDown");
      if (states.get(target)?.startsWith("UP")) mark("newPrimaryUp");
      if (leaderOf(members)?.name !== target || timeline.promoted === null) return undefined;
      if (!gate) return true;
      const routable = [...states].filter(([, status]) => !status.startsWith("DOWN")).map(([server]) => server);
      return routable.length === 1 && routable[0] === target && (await outOfRecovery(cluster.primaryUrl(), 1000)) ? true : undefined;
    });
    if (!done) throw new Error(`switchover ${leader.name} -> ${target}: the new primary was not routed alone within ${timeoutMs / 1000} s`);
  } finally {
    if (gate) {
      maxRoutableWhileOpen = (await routableServers(cluster)).length;
      await pgbouncerAdmin(cluster, "RESUME");
      mark("resumed");
    }
  }
  const seconds = (Date.now() - started) / 1000;
  await request; // Patroni's own answer, for a clean end (its outcome was seen above)
  if (refused) throw refused;
  return { group, from: leader.name, to: target, seconds, startedAt: started, maxRoutableWhileOpen, timeline };
}

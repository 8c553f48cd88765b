// Rollouts and drains. Kubernetes knows nothing of Patroni roles: a StatefulSet's RollingUpdate restarts
// the highest ordinal first, whatever its role, and an eviction takes any pod its budget allows. So:
// - Patroni groups update `OnDelete`: a changed template restarts no pod by itself; the pods are
//   restarted in rolloutPlan's order (replicas, switchover, the old primary), by hand today (README,
//   "Rollouts and drains") until the day-two orchestration (issue 11) does it.
// - their disruption budget allows no eviction of a ready member (maxUnavailable 0), so a node drain
//   stops at a Patroni pod instead of taking a primary; not-ready members (a replica being cloned, a
//   broken one) may still be evicted (unhealthyPodEvictionPolicy AlwaysAllow): a leader is always
//   ready (Patroni's /readiness answers 200 for the leader key holder).
// - etcd keeps RollingUpdate (its readiness needs quorum, so the next member waits for the last to
//   rejoin) and a budget that keeps a majority.
// - HAProxy and PgBouncer run `kubernetesRouterReplicas` pods, surge one new pod before stopping one,
//   and a drain leaves at least one running.
import type { Kind } from "./naming.ts";

export interface DisruptionBudget {
  maxUnavailable: number;
  unhealthyPodEvictionPolicy?: "AlwaysAllow" | "IfHealthyBudget";
}

/** The PodDisruptionBudget spec of a group of `pods` pods; undefined: no budget. */
export function disruptionBudget(kind: Kind, pods: number): DisruptionBudget | undefined {
  if (kind === "database") return { maxUnavailable: 0, unhealthyPodEvictionPolicy: "AlwaysAllow" };
  // A majority of n members survives floor((n - 1) / 2) losses; a single member, none.
  if (kind === "etcd") return { maxUnavailable: Math.floor((pods - 1) / 2) };
  if ((kind === "haproxy" || kind === "pgbouncer") && pods >= 2) return { maxUnavailable: 1 };
  return undefined;
}

/** The StatefulSet update strategy of a group. */
export function statefulSetUpdateStrategy(kind: Kind): { type: "OnDelete" | "RollingUpdate" } {
  return { type: kind === "database" ? "OnDelete" : "RollingUpdate" };
}

/** A Patroni member as `patronictl list` / GET /cluster shows it, and whether its pod runs the current template. */
export interface MemberState {
  name: string;
  /** Patroni's role: "leader", "sync_standby", "replica", ... */
  role: string;
  /** The pod's controller-revision-hash is the StatefulSet's updateRevision. */
  updated: boolean;
}

export type RolloutStep =
  | { action: "restart"; member: string }
  | { action: "switchover"; from: string; to: string };

/**
 * The order in which to restart a Patroni group's outdated pods without an unplanned failover: each
 * outdated replica (restart = delete the pod, then wait until it is ready again, i.e. streaming); then,
 * when the leader is outdated and has a replica, a switchover to a replica (the synchronous standby
 * first: with synchronous mode Patroni promotes no other); then the former leader. A group of one
 * member can only be restarted, with downtime.
 */
export function rolloutPlan(members: MemberState[]): RolloutStep[] {
  const leader = members.find((m) => m.role === "leader");
  const replicas = members.filter((m) => m !== leader);
  const steps: RolloutStep[] = replicas.filter((m) => !m.updated).map((m) => ({ action: "restart", member: m.name }));
  if (leader && !leader.updated) {
    // A standby that acknowledges commits ("on": sync_standby, "quorum": quorum_standby) has every one.
    const candidate = replicas.find((m) => m.role === "sync_standby" || m.role === "quorum_standby") ?? replicas[0];
    if (candidate) steps.push({ action: "switchover", from: leader.name, to: candidate.name });
    steps.push({ action: "restart", member: leader.name });
  }
  return steps;
}

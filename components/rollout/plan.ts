// The order in which a Patroni group's members are restarted without an unplanned failover. Pure:
// the rollout (orchestrate.ts), the Kubernetes pod rollout (kubernetes.ts) and the tests share it.

/** A Patroni member as GET /cluster shows it, and whether it already runs what is wanted. */
export interface MemberState {
  name: string;
  /** Patroni's role: "leader", "sync_standby", "quorum_standby", "replica", ... */
  role: string;
  /**
   * Runs the wanted configuration: no `pending_restart` (a parameter change), or a pod of the
   * StatefulSet's updateRevision (Kubernetes).
   */
  updated: boolean;
}

export type RolloutStep =
  | { action: "restart"; member: string }
  | { action: "switchover"; from: string; to: string };

/** Patroni's roles of a standby that acknowledges commits ("on": sync_standby; "quorum": quorum_standby). */
export const SYNCHRONOUS_ROLES = ["sync_standby", "quorum_standby"];

/**
 * Each outdated replica is restarted (and waited for until it streams again); then, when the leader
 * is outdated and has a replica, a switchover to a replica (a synchronous one first: with
 * synchronous mode Patroni promotes no other); then the former leader is restarted. A group of one
 * member can only be restarted, with downtime. Returns no step when every member is up to date.
 */
export function rolloutPlan(members: MemberState[]): RolloutStep[] {
  const leader = members.find((m) => m.role === "leader");
  const replicas = members.filter((m) => m !== leader);
  const steps: RolloutStep[] = replicas.filter((m) => !m.updated).map((m) => ({ action: "restart", member: m.name }));
  if (leader && !leader.updated) {
    const candidate = replicas.find((m) => SYNCHRONOUS_ROLES.includes(m.role)) ?? replicas[0];
    if (candidate) steps.push({ action: "switchover", from: leader.name, to: candidate.name });
    steps.push({ action: "restart", member: leader.name });
  }
  return steps;
}

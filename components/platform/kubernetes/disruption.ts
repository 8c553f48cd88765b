// Rollouts and drains. Kubernetes knows nothing of Patroni roles: a StatefulSet's RollingUpdate restarts
// the highest ordinal first, whatever its role, and an eviction takes any pod its budget allows. So:
// - Patroni groups update `OnDelete`: a changed template restarts no pod by itself; the pods are
//   restarted in rolloutPlan's order (replicas, switchover, the old primary): components/rollout/kubernetes.ts,
//   run by `pulumi up` as the rollout Job (components/rollout-run.ts).
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

// The order itself is the rollout's (components/rollout/plan.ts), shared with the local runner and
// the Docker platform's rolling changes.
export { rolloutPlan, type MemberState, type RolloutStep } from "../../rollout/plan.ts";

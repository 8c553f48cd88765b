// The ordered restart of a Patroni group on Kubernetes (issue 13 item 3). Its StatefulSet updates
// `OnDelete` (components/platform/kubernetes/disruption.ts): a changed pod template restarts no pod
// by itself. This deletes the outdated pods in rolloutPlan's order, each after the previous one is
// back (its new pod ready and its member streaming): replicas first, then a switchover (PgBouncer
// paused for the coordinator group), then the former leader. A demotion restarts PostgreSQL but not
// the pod, so the former leader's pod is always replaced last.
import { defaults, gatedSwitchover, groupReady, waitFor, type RolloutOptions, type RolloutTarget, type SwitchoverReport } from "./orchestrate.ts";
import { rolloutPlan, SYNCHRONOUS_ROLES } from "./plan.ts";

/** A StatefulSet's pods as the Kubernetes API reports them. */
export interface PodState {
  /** The pod's name: the Patroni member's name (<group>-<ordinal>). */
  name: string;
  /** Its controller-revision-hash label equals the StatefulSet's status.updateRevision. */
  updated: boolean;
  /** Its Ready condition (readiness: Patroni's /readiness). */
  ready: boolean;
}

/** What the rollout needs from the Kubernetes API. */
export interface PodApi {
  pods(statefulSet: string): Promise<PodState[]>;
  /** Deletes a pod; the StatefulSet controller recreates it from the current template. */
  deletePod(name: string): Promise<void>;
}

export interface PodRolloutReport {
  group: number;
  deleted: string[];
  switchovers: SwitchoverReport[];
}

/**
 * Replaces every outdated pod of one Patroni group's StatefulSet, one at a time, without an
 * unplanned failover. `patroni` reaches the group's Patroni REST API (roles, switchover) and, for
 * the coordinator group, PgBouncer. Throws when a step does not finish within stepTimeoutMs.
 */
export async function kubernetesRollout(pods: PodApi, patroni: RolloutTarget, group: number, statefulSet: string, options: RolloutOptions = {}): Promise<PodRolloutReport> {
  const o = defaults(options);
  const first = await groupReady(patroni, group, false, o);
  const synchronous = first.some((m) => SYNCHRONOUS_ROLES.includes(m.role));
  const report: PodRolloutReport = { group, deleted: [], switchovers: [] };
  for (let guard = 0; guard < first.length * 3 + 2; guard++) {
    const members = await groupReady(patroni, group, synchronous, o, first.length);
    const podStates = await pods.pods(statefulSet);
    const updated = (name: string) => podStates.find((p) => p.name === name)?.updated ?? false;
    const [step] = rolloutPlan(members.map((m) => ({ name: m.name, role: m.role, updated: updated(m.name) })));
    if (!step) return report;
    if (step.action === "switchover") {
      report.switchovers.push(await gatedSwitchover(patroni, group, step.from, step.to, options));
      continue;
    }
    o.log(`rollout: ${statefulSet}: deleting pod ${step.member}`);
    await pods.deletePod(step.member);
    report.deleted.push(step.member);
    await waitFor(`pod ${step.member} recreated, ready and streaming`, o, async () => {
      const pod = (await pods.pods(statefulSet)).find((p) => p.name === step.member);
      const member = (await patroni.members(group))?.find((m) => m.name === step.member);
      return pod?.updated && pod.ready && member && (member.state === "streaming" || member.state === "running") ? true : undefined;
    });
  }
  throw new Error(`rollout: ${statefulSet}: pods still outdated after ${first.length * 3 + 2} steps`);
}

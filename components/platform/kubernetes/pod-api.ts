// The rollout's view of a StatefulSet's pods (components/rollout/kubernetes.ts PodApi), through the
// Kubernetes API from inside the cluster: the rollout step's pod, with its ServiceAccount's token
// and the cluster's CA (api-request.ts). Three calls, all the step's Role allows (rolloutRules):
// - GET  /apis/apps/v1/namespaces/<ns>/statefulsets/<set>      its selector and status.updateRevision;
// - GET  /api/v1/namespaces/<ns>/pods?labelSelector=<selector> its pods (list);
// - DELETE /api/v1/namespaces/<ns>/pods/<pod>                  the controller recreates it (OnDelete).
// No Pulumi import (runs in the pod).
import type { PodApi, PodState } from "../../rollout/kubernetes.ts";
import { apiRequest, type ApiAccess } from "./api-request.ts";

/** Pods' label holding the StatefulSet revision they were created from. */
export const REVISION_LABEL = "controller-revision-hash";

export interface StatefulSetJson {
  metadata?: { generation?: number };
  spec?: { selector?: { matchLabels?: Record<string, string> } };
  status?: { observedGeneration?: number; updateRevision?: string };
}

export interface PodJson {
  metadata: { name: string; labels?: Record<string, string>; deletionTimestamp?: string };
  status?: { podIP?: string; conditions?: { type: string; status: string }[] };
}

export interface PodApiOptions {
  /** How often to read a StatefulSet again whose controller has not yet seen its last change (default 20). */
  observeAttempts?: number;
  /** ms between those reads (default 1000). */
  observePollMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

/** A pod of the rollout: updated when created from `updateRevision` and not being deleted; ready by its Ready condition. */
export function podState(pod: PodJson, updateRevision: string): PodState {
  const deleting = pod.metadata.deletionTimestamp !== undefined;
  return {
    name: pod.metadata.name,
    updated: !deleting && pod.metadata.labels?.[REVISION_LABEL] === updateRevision,
    ready: !deleting && (pod.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True"),
  };
}

/** labelSelector's text for matchLabels (k=v,k=v). */
export function labelSelector(matchLabels: Record<string, string>): string {
  return Object.entries(matchLabels)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
}

/** A StatefulSet's spec.selector.matchLabels; throws when it has none (its pods cannot be found). */
export function selectorOf(set: StatefulSetJson, namespace: string, statefulSet: string): Record<string, string> {
  const matchLabels = set.spec?.selector?.matchLabels ?? {};
  if (Object.keys(matchLabels).length === 0) throw new Error(`statefulset ${namespace}/${statefulSet}: no spec.selector.matchLabels to find its pods by`);
  return matchLabels;
}

/** The pods `matchLabels` selects in `namespace`: one list call (`what` names it in errors). Throws KubernetesApiError on a refusal. */
export async function listPods(access: ApiAccess, namespace: string, matchLabels: Record<string, string>, what: string): Promise<PodJson[]> {
  const list = (await apiRequest(access, {
    method: "GET",
    path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods?labelSelector=${encodeURIComponent(labelSelector(matchLabels))}`,
    what: `GET ${what}`,
  })) as { items?: PodJson[] };
  return list.items ?? [];
}

/**
 * The PodApi of namespace `namespace` over `access`: an ApiAccess, or a function read again for each
 * request (in a pod: inClusterAccess, whose token file the kubelet replaces before it expires; a
 * rollout may outlast one token). `pods(set)` waits (observeAttempts reads) until
 * the StatefulSet controller has observed the set's last change (status.observedGeneration =
 * metadata.generation: until then updateRevision is the previous template's) and throws after.
 * Every call throws KubernetesApiError on a refusal (403: the Role does not allow it).
 */
export function kubernetesPodApi(access: ApiAccess | (() => ApiAccess), namespace: string, options: PodApiOptions = {}): PodApi {
  const current = typeof access === "function" ? access : () => access;
  const ns = encodeURIComponent(namespace);
  const attempts = options.observeAttempts ?? 20;
  const pollMs = options.observePollMs ?? 1000;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  return {
    async pods(statefulSet) {
      let set: StatefulSetJson | undefined;
      for (let attempt = 1; ; attempt++) {
        set = (await apiRequest(current(), {
          method: "GET",
          path: `/apis/apps/v1/namespaces/${ns}/statefulsets/${encodeURIComponent(statefulSet)}`,
          what: `GET statefulset ${namespace}/${statefulSet}`,
        })) as StatefulSetJson;
        if ((set.status?.observedGeneration ?? 0) >= (set.metadata?.generation ?? 0) && set.status?.updateRevision) break;
        if (attempt >= attempts) {
          throw new Error(
            `statefulset ${namespace}/${statefulSet}: its controller has not observed generation ${set.metadata?.generation} ` +
              `(observed ${set.status?.observedGeneration ?? "none"}, updateRevision ${set.status?.updateRevision ?? "none"}) after ${attempts} reads`,
          );
        }
        await sleep(pollMs);
      }
      const revision = set.status!.updateRevision!;
      const pods = await listPods(current(), namespace, selectorOf(set, namespace, statefulSet), `pods of ${namespace}/${statefulSet}`);
      return pods.map((pod) => podState(pod, revision));
    },
    async deletePod(name) {
      await apiRequest(current(), {
        method: "DELETE",
        path: `/api/v1/namespaces/${ns}/pods/${encodeURIComponent(name)}`,
        what: `DELETE pod ${namespace}/${name}`,
      });
    },
  };
}

/**
 * The addresses (status.podIP) of the ready pods, not being deleted, that `matchLabels` selects in
 * `namespace`: the router's pods one by one, where a Service would pick one of them per connection.
 * One list call (the rollout Role's `list pods`). Throws KubernetesApiError on a refusal.
 */
export async function readyPodAddresses(access: ApiAccess | (() => ApiAccess), namespace: string, matchLabels: Record<string, string>): Promise<{ name: string; ip: string }[]> {
  const current = typeof access === "function" ? access() : access;
  const pods = await listPods(current, namespace, matchLabels, `pods ${labelSelector(matchLabels)} in ${namespace}`);
  return pods
    .filter((pod) => pod.status?.podIP && podState(pod, "").ready)
    .map((pod) => ({ name: pod.metadata.name, ip: pod.status!.podIP! }));
}

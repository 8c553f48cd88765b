// The scaling step's view of the worker StatefulSets that go (components/scaling/step.ts
// StatefulSetScaler), through the Kubernetes API from inside the cluster, with the step's
// ServiceAccount (api-request.ts). Three calls, all its Role allows (scalingRules):
// - PATCH /apis/apps/v1/namespaces/<ns>/statefulsets/<set>/scale  {"spec":{"replicas":0}} (merge patch);
// - GET   /apis/apps/v1/namespaces/<ns>/statefulsets/<set>        its selector;
// - GET   /api/v1/namespaces/<ns>/pods?labelSelector=<selector>  its pods still there.
// A set that does not exist (404: Pulumi deleted it already, an earlier run got that far) has no pod.
// No Pulumi import (runs in the pod).
import { apiRequest, KubernetesApiError, type ApiAccess } from "./api-request.ts";
import { listPods, selectorOf, type StatefulSetJson } from "./pod-api.ts";

/** Scales StatefulSets down and reports the pods they still have (components/scaling/step.ts). */
export interface StatefulSetScaler {
  /** Sets the set's replicas to 0: the controller deletes its pods (all at once under `Parallel`). */
  scaleToZero(statefulSet: string): Promise<void>;
  /** Names of the set's pods that still exist (terminating ones included); [] when the set is gone. */
  podsLeft(statefulSet: string): Promise<string[]>;
}

const notFound = (error: unknown) => error instanceof KubernetesApiError && error.status === 404;

/** The scaler of namespace `namespace` over `access` (a function: read again for each request, see pod-api.ts). */
export function kubernetesScaler(access: ApiAccess | (() => ApiAccess), namespace: string): StatefulSetScaler {
  const current = typeof access === "function" ? access : () => access;
  const ns = encodeURIComponent(namespace);
  const setPath = (set: string) => `/apis/apps/v1/namespaces/${ns}/statefulsets/${encodeURIComponent(set)}`;
  return {
    async scaleToZero(statefulSet) {
      try {
        await apiRequest(current(), { method: "PATCH", path: `${setPath(statefulSet)}/scale`, body: { spec: { replicas: 0 } }, what: `PATCH statefulset ${namespace}/${statefulSet}/scale` });
      } catch (error) {
        if (!notFound(error)) throw error;
      }
    },
    async podsLeft(statefulSet) {
      let set: StatefulSetJson;
      try {
        set = (await apiRequest(current(), { method: "GET", path: setPath(statefulSet), what: `GET statefulset ${namespace}/${statefulSet}` })) as StatefulSetJson;
      } catch (error) {
        if (notFound(error)) return [];
        throw error;
      }
      const pods = await listPods(current(), namespace, selectorOf(set, namespace, statefulSet), `pods of ${namespace}/${statefulSet}`);
      return pods.map((pod) => pod.metadata.name);
    },
  };
}

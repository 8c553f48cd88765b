// How a deploy step's pod hands its result to `pulumi up`: a merge patch of its result ConfigMap's
// data through the Kubernetes API, with the pod's ServiceAccount token (the Role allows this one
// ConfigMap, nothing else). Node's https with the cluster's CA; no Pulumi import (runs in the pod).
import { readFileSync } from "node:fs";
import { apiRequest, type ApiAccess } from "./api-request.ts";

export type { ApiAccess } from "./api-request.ts";

/** Where a pod finds its ServiceAccount's token and the cluster's CA (Kubernetes' documented paths). */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/**
 * The API as a pod sees it: KUBERNETES_SERVICE_HOST/PORT (set in every pod, service links or not),
 * else the `kubernetes.default.svc` name; the token and CA of `dir`.
 */
export function inClusterAccess(env: NodeJS.ProcessEnv = process.env, dir = SERVICE_ACCOUNT_DIR): ApiAccess {
  const host = env.KUBERNETES_SERVICE_HOST ?? "kubernetes.default.svc";
  const port = env.KUBERNETES_SERVICE_PORT ?? "443";
  const bracketed = host.includes(":") ? `[${host}]` : host;
  return {
    url: `https://${bracketed}:${port}`,
    token: readFileSync(`${dir}/token`, "utf8").trim(),
    ca: readFileSync(`${dir}/ca.crt`, "utf8"),
  };
}

/**
 * Merges `data` into ConfigMap `namespace/name`. Throws with the API's status and message (never the
 * token) when it refuses, e.g. 403 when the Role does not name the ConfigMap.
 */
export async function patchConfigMapData(access: ApiAccess, namespace: string, name: string, data: Record<string, string>): Promise<void> {
  await apiRequest(access, {
    method: "PATCH",
    path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps/${encodeURIComponent(name)}`,
    body: { data },
    what: `PATCH configmap ${namespace}/${name}`,
  });
}

// How a deploy step's pod hands its result to `pulumi up`: a merge patch of its result ConfigMap's
// data through the Kubernetes API, with the pod's ServiceAccount token (the Role allows this one
// ConfigMap, nothing else). Node's https with the cluster's CA; no Pulumi import (runs in the pod).
import { readFileSync } from "node:fs";
import * as http from "node:http";
import * as https from "node:https";

/** Where a pod finds its ServiceAccount's token and the cluster's CA (Kubernetes' documented paths). */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

export interface ApiAccess {
  /** Base URL of the API server, e.g. https://10.96.0.1:443. */
  url: string;
  token: string;
  /** PEM of the CA that signed the API server's certificate (https only). */
  ca?: string;
}

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
  const url = new URL(`/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps/${encodeURIComponent(name)}`, access.url);
  const body = JSON.stringify({ data });
  const options = {
    method: "PATCH",
    headers: {
      authorization: `Bearer ${access.token}`,
      "content-type": "application/merge-patch+json",
      "content-length": Buffer.byteLength(body),
      accept: "application/json",
    },
    timeout: 30_000,
    ...(access.ca ? { ca: access.ca } : {}),
  };
  const transport = url.protocol === "https:" ? https : http;
  const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const request = transport.request(url, options, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
      response.on("error", reject);
    });
    request.on("timeout", () => request.destroy(new Error(`no answer from ${url.host} within 30 s`)));
    request.on("error", reject);
    request.end(body);
  });
  if (status < 200 || status >= 300) {
    let message = text.slice(0, 300);
    try {
      message = (JSON.parse(text) as { message?: string }).message ?? message;
    } catch {
      // not JSON: the raw text
    }
    throw new Error(`PATCH configmap ${namespace}/${name}: HTTP ${status}: ${message}`);
  }
}

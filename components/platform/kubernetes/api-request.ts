// One request to the Kubernetes API as a pod makes it: its ServiceAccount's bearer token, the
// cluster's CA (https), JSON in and out. Node's http/https only; no Pulumi import (runs in the
// deploy steps' pods: result-writer.ts, pod-api.ts).
import * as http from "node:http";
import * as https from "node:https";

export interface ApiAccess {
  /** Base URL of the API server, e.g. https://10.96.0.1:443. */
  url: string;
  token: string;
  /** PEM of the CA that signed the API server's certificate (https only). */
  ca?: string;
}

/** A refusal of the API server: its HTTP status and its message (never the token). */
export class KubernetesApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export interface ApiRequest {
  method: "GET" | "PATCH" | "DELETE";
  /** Path and query, e.g. /api/v1/namespaces/dpc/pods?labelSelector=a%3Db. */
  path: string;
  /** A JSON body (PATCH: a merge patch). */
  body?: unknown;
  /** What the error messages call the request, e.g. "PATCH configmap dpc/x". */
  what: string;
  /** ms; default 30 s. */
  timeoutMs?: number;
}

/**
 * Sends `request` with the token (and the CA for https); resolves to the parsed JSON answer of a 2xx
 * status. Throws KubernetesApiError("<what>: HTTP <status>: <the API's message>") otherwise, and the
 * transport's error (refused, timed out, certificate not trusted) when no answer came.
 */
export async function apiRequest(access: ApiAccess, request: ApiRequest): Promise<unknown> {
  const url = new URL(request.path, access.url);
  const body = request.body === undefined ? undefined : JSON.stringify(request.body);
  const timeoutMs = request.timeoutMs ?? 30_000;
  const headers: Record<string, string | number> = { authorization: `Bearer ${access.token}`, accept: "application/json" };
  if (body !== undefined) {
    headers["content-type"] = request.method === "PATCH" ? "application/merge-patch+json" : "application/json";
    headers["content-length"] = Buffer.byteLength(body);
  }
  const options = { method: request.method, headers, timeout: timeoutMs, ...(access.ca ? { ca: access.ca } : {}) };
  const transport = url.protocol === "https:" ? https : http;
  const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const sent = transport.request(url, options, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
      response.on("error", reject);
    });
    sent.on("timeout", () => sent.destroy(new Error(`${request.what}: no answer from ${url.host} within ${Math.round(timeoutMs / 1000)} s`)));
    sent.on("error", reject);
    sent.end(body);
  });
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: the raw text
  }
  if (status < 200 || status >= 300) {
    const message = (parsed as { message?: string } | undefined)?.message ?? text.slice(0, 300);
    throw new KubernetesApiError(`${request.what}: HTTP ${status}: ${message}`, status);
  }
  return parsed;
}

// Patroni's and etcd's REST APIs, as the local runner and the tests read them (over HTTPS when the
// cluster has TLS: see local/https.ts for how each origin's CA is known).
import { request } from "../components/https.ts";

export interface ClusterMember {
  name: string;
  role: string; // "leader" | "replica" | "sync_standby" | "standby_leader" ...
  state: string; // "running" | "streaming" | "stopped" | "starting" ...
  host: string;
  lag?: number | string;
  timeline?: number;
}

async function getJson(url: string, timeoutMs = 1500): Promise<unknown> {
  const response = await request(url, { timeoutMs });
  if (response.status !== 200 && response.status !== 503) throw new Error(`${url}: HTTP ${response.status}`);
  return JSON.parse(response.text) as unknown;
}

/** The members of a Patroni cluster as any reachable member reports them, or undefined. */
export async function clusterMembers(restUrls: string[]): Promise<ClusterMember[] | undefined> {
  for (const url of restUrls) {
    try {
      const body = (await getJson(`${url}/cluster`)) as { members?: ClusterMember[] };
      if (body.members) return body.members;
    } catch {
      // try the next member
    }
  }
  return undefined;
}

export function leaderOf(members: ClusterMember[] | undefined): ClusterMember | undefined {
  return members?.find((m) => m.role === "leader" && m.state === "running");
}

/** HTTP status of a Patroni health endpoint (/primary, /replica, /health), 0 when unreachable. */
export async function healthStatus(restUrl: string, endpoint: string): Promise<number> {
  try {
    return (await request(`${restUrl}${endpoint}`)).status;
  } catch {
    return 0;
  }
}

export async function etcdHealthy(clientUrl: string): Promise<boolean> {
  try {
    const body = (await getJson(`${clientUrl}/health`)) as { health?: string };
    return body.health === "true";
  } catch {
    return false;
  }
}

/**
 * POST to a Patroni REST endpoint that needs credentials (/switchover, /reinitialize, ...).
 * `auth` is "user:password". Throws with Patroni's answer when it refuses (HTTP status >= 400).
 */
export async function postPatroni(restUrl: string, path: string, auth: string, body: unknown, timeoutMs = 60000): Promise<string> {
  const response = await request(`${restUrl}${path}`, {
    method: "POST",
    headers: { authorization: `Basic ${Buffer.from(auth).toString("base64")}`, "content-type": "application/json" },
    body: JSON.stringify(body),
    timeoutMs,
  });
  if (response.status >= 400) throw new Error(`Patroni ${restUrl}${path}: HTTP ${response.status} ${response.text}`);
  return response.text;
}

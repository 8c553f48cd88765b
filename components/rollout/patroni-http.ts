// The rollout's target over the wire: Patroni's REST API on every member, PgBouncer's admin console,
// HAProxy's stats. Used by the local runner (local/apply-changes.ts) and the Pulumi dynamic provider
// (components/rollout/apply.ts); no Pulumi import.
import { haproxyServerStates } from "../haproxy-stats.ts";
import { request as httpRequest } from "../https.ts";
import { pgbouncerCommand } from "../pgbouncer-admin.ts";
import { pgClientConfig, quietClient } from "../pg-client.ts";
import type { Parameters } from "./parameters.ts";
import type { Member, RolloutTarget } from "./orchestrate.ts";

/** A member's Patroni REST API. */
export interface PatroniMemberUrl {
  name: string;
  /** Base URL, https://host:8008 with TLS. */
  restUrl: string;
  /**
   * The name its certificate carries, when `restUrl`'s host is not one of them (the Docker platform
   * dials a container's IP address; its certificate names the container's hostname). Absent: the host.
   */
  serverName?: string;
}

export interface PatroniHttpSpec {
  /** Every Citus group with its members' Patroni REST base URLs (https://host:8008 with TLS). */
  groups: { group: number; members: PatroniMemberUrl[] }[];
  /**
   * "user:password" of Patroni's REST API (PATCH /config, /restart, /switchover need it). A list:
   * tried in order while the member answers 401 (during a rotation, members not yet re-created
   * still check the previous password).
   */
  restAuth: string | string[];
  /**
   * postgresql:// URL of PgBouncer's admin console as an admin user; omitted: no client gate. A
   * list: tried in order until one logs in (as restAuth, for a rotation of the superuser password).
   */
  poolerAdminUrl?: string | string[];
  /**
   * The cluster CA (PEM) that Patroni's https certificates and PostgreSQL's/PgBouncer's TLS are
   * verified against (name included); omitted: for https, the CA registered for the origin
   * (components/https.ts trustOrigin), else Node's own; for SQL, the URLs' own sslmode/sslrootcert.
   */
  ca?: string;
  /**
   * The name PgBouncer's and HAProxy's (the coordinators') certificates carry when poolerAdminUrl and
   * readWriteUrl dial an address they do not name (a router pod's IP on Kubernetes); omitted: the URL's host.
   */
  routerServerName?: string;
  /** HAProxy's stats CSV (http://host:port/;csv) and the read-write backend's name in it. */
  haproxyStats?: { url: string; backend: string };
  /**
   * Without the stats: a superuser postgresql:// URL through HAProxy's read-write listener. The new
   * leader counts as routed alone once ROUTED_PROBES fresh connections in a row reach a server out
   * of recovery (HAProxy balances round-robin: a demoted leader still marked UP would answer one).
   */
  readWriteUrl?: string;
  /**
   * A superuser postgresql:// URL of the coordinator leader in the Citus database (through HAProxy's
   * read-write listener): given, worker groups' switchovers are gated by PgBouncer too and PgBouncer
   * resumes once pg_dist_node names the new leader (RolloutTarget.gatesWorkerSwitchovers: while
   * members check different REST API passwords). Omitted: Patroni's announcement holds the group.
   */
  workerRoutingUrl?: string;
  /** Direct superuser URLs of the members (name -> postgresql://), for the CHECKPOINT before a switchover. */
  memberSqlUrls?: Record<string, string>;
  /** Timeout of one REST call, ms (a restart answers when it is done). */
  requestTimeoutMs?: number;
}

/** Patroni's GET /cluster member, as far as the rollout reads it. */
interface ClusterMemberJson {
  name: string;
  role: string;
  state: string;
  pending_restart?: boolean;
  host?: string;
}

async function request(url: string, init: { method?: string; body?: string; auth?: string | string[]; timeoutMs: number; ca?: string; serverName?: string }): Promise<unknown> {
  const auths = init.auth === undefined ? [undefined] : typeof init.auth === "string" ? [init.auth] : init.auth;
  let answer: { status: number; text: string } | undefined;
  for (const auth of auths) {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (auth) headers.authorization = `Basic ${Buffer.from(auth).toString("base64")}`;
    answer = await httpRequest(url, { method: init.method, body: init.body, headers, timeoutMs: init.timeoutMs, ...(init.ca ? { identity: { ca: init.ca, ...(init.serverName ? { serverName: init.serverName } : {}) } } : {}) });
    if (answer.status !== 401) break;
  }
  if (!answer) throw new Error(`Patroni ${init.method ?? "GET"} ${url}: no credentials to try`);
  // Patroni answers 503 on GET /cluster-style reads of an unhealthy member, with a body: keep it.
  if (answer.status < 200 || answer.status > 299) throw new Error(`Patroni ${init.method ?? "GET"} ${url}: HTTP ${answer.status} ${answer.text.slice(0, 300)}`);
  try {
    return JSON.parse(answer.text);
  } catch {
    return answer.text;
  }
}


/** Fresh connections in a row that must reach a primary (readWriteUrl). */
export const ROUTED_PROBES = 6;

/** Whether a fresh connection to `url` reaches a server out of recovery. */
async function reachesPrimary(url: string, ca?: string, serverName?: string): Promise<boolean> {
  const client = quietClient(pgClientConfig(url, ca, { connectionTimeoutMillis: 2000, query_timeout: 2000 }, serverName));
  try {
    await client.connect();
    return (await client.query("SELECT pg_is_in_recovery() AS standby")).rows[0].standby === false;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * The active primary rows' node names of Citus group `group` in the coordinator's pg_dist_node (at
 * `url`); empty when it cannot be read. Patroni writes `<host>-demoted` there during a switchover it
 * was told of (postgresql/mpp/citus.py update_node).
 */
async function primariesOf(url: string, group: number, ca?: string, serverName?: string): Promise<string[]> {
  const client = quietClient(pgClientConfig(url, ca, { connectionTimeoutMillis: 2000, query_timeout: 2000 }, serverName));
  try {
    await client.connect();
    const { rows } = await client.query("SELECT nodename FROM pg_catalog.pg_dist_node WHERE groupid = $1 AND noderole = 'primary' AND isactive", [group]);
    return rows.map((r: { nodename: string }) => r.nodename);
  } catch {
    return [];
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Servers of a HAProxy backend that are not DOWN ("UP 1/2" is still routable), from its stats CSV. */
export async function routableServers(statsCsvUrl: string, backend: string): Promise<string[]> {
  const states = await haproxyServerStates(statsCsvUrl, backend, 2000);
  return [...states].filter(([, status]) => !status.startsWith("DOWN")).map(([server]) => server);
}

/** The rollout target of a cluster reached over HTTP (Patroni), and SQL (PgBouncer, CHECKPOINT). */
export function patroniHttpTarget(spec: PatroniHttpSpec): RolloutTarget {
  const timeoutMs = spec.requestTimeoutMs ?? 120000;
  const groupOf = (group: number) => {
    const found = spec.groups.find((g) => g.group === group);
    if (!found) throw new Error(`rollout: no group ${group} among ${spec.groups.map((g) => g.group).join(", ")}`);
    return found;
  };
  const restUrl = (group: number, member: string) => {
    const found = groupOf(group).members.find((m) => m.name === member);
    if (!found) throw new Error(`rollout: no member ${member} in group ${group}`);
    return found.restUrl;
  };
  const serverNameOf = (group: number, member: string) => groupOf(group).members.find((m) => m.name === member)?.serverName;
  /** The first member of the group that answers `path`. */
  const anyMember = async (group: number, path: string): Promise<unknown> => {
    let last: unknown;
    for (const m of groupOf(group).members) {
      try {
        return await request(`${m.restUrl}${path}`, { timeoutMs: 3000, ca: spec.ca, serverName: m.serverName });
      } catch (error) {
        last = error;
      }
    }
    throw new Error(`rollout: no member of group ${group} answered ${path}: ${(last as Error)?.message}`);
  };
  const target: RolloutTarget = {
    groups: spec.groups.map((g) => g.group),
    async members(group) {
      try {
        const body = (await anyMember(group, "/cluster")) as { members?: ClusterMemberJson[] };
        return body.members?.map((m): Member => ({ name: m.name, role: m.role, state: m.state, pendingRestart: m.pending_restart === true, ...(m.host ? { host: m.host } : {}) }));
      } catch {
        return undefined;
      }
    },
    async parameters(group) {
      const body = (await anyMember(group, "/config")) as { postgresql?: { parameters?: Parameters } };
      return body.postgresql?.parameters ?? {};
    },
    async patchConfig(group, patch) {
      // Any member writes the group's config key in the DCS; try them in turn.
      let last: unknown;
      for (const m of groupOf(group).members) {
        try {
          await request(`${m.restUrl}/config`, { method: "PATCH", body: JSON.stringify(patch), auth: spec.restAuth, timeoutMs: 10000, ca: spec.ca, serverName: m.serverName });
          return;
        } catch (error) {
          last = error;
        }
      }
      throw last;
    },
    async restart(group, member) {
      await request(`${restUrl(group, member)}/restart`, { method: "POST", body: "{}", auth: spec.restAuth, timeoutMs, ca: spec.ca, serverName: serverNameOf(group, member) });
    },
    async switchover(group, leader, candidate) {
      await request(`${restUrl(group, leader)}/switchover`, { method: "POST", body: JSON.stringify({ leader, candidate }), auth: spec.restAuth, timeoutMs, ca: spec.ca, serverName: serverNameOf(group, leader) });
    },
  };
  if (spec.memberSqlUrls) {
    const urls = spec.memberSqlUrls;
    target.checkpoint = async (group, member) => {
      if (!urls[member]) return;
      // Dialled where the REST API is: verified against the same name (PatroniMemberUrl.serverName).
      const serverName = spec.groups.find((g) => g.group === group)?.members.find((m) => m.name === member)?.serverName;
      const client = quietClient(pgClientConfig(urls[member], spec.ca, { connectionTimeoutMillis: 3000 }, serverName));
      await client.connect();
      await client.query("CHECKPOINT").finally(() => client.end().catch(() => undefined));
    };
  }
  if (spec.poolerAdminUrl) {
    const urls = typeof spec.poolerAdminUrl === "string" ? [spec.poolerAdminUrl] : spec.poolerAdminUrl;
    /** `command` as the first URL that logs in; returns that URL. Throws the last failure. */
    const firstAccepted = async (command: string): Promise<string> => {
      let last: unknown;
      for (const url of urls) {
        try {
          await pgbouncerCommand(url, command, 5000, spec.ca, spec.routerServerName);
          return url;
        } catch (error) {
          last = error;
        }
      }
      throw last;
    };
    target.pooler = {
      // PAUSE waits until every server connection is released (transactions finish); RECONNECT then
      // drops them, so none survives onto the former leader.
      pause: async () => {
        const url = await firstAccepted("PAUSE");
        await pgbouncerCommand(url, "RECONNECT", 5000, spec.ca, spec.routerServerName);
      },
      resume: async () => void (await firstAccepted("RESUME")),
    };
  }
  if (spec.workerRoutingUrl) {
    const url = spec.workerRoutingUrl;
    target.gatesWorkerSwitchovers = async () => true;
    target.routedWorker = async (group, member) => {
      const host = (await target.members(group))?.find((m) => m.name === member)?.host;
      if (!host) return false;
      const nodes = await primariesOf(url, group, spec.ca, spec.routerServerName);
      return nodes.length > 0 && nodes.every((name) => name === host);
    };
  }
  if (spec.haproxyStats) {
    const { url, backend } = spec.haproxyStats;
    const sqlUrls = spec.memberSqlUrls ?? {};
    target.routedAlone = async (member) => {
      const routable = await routableServers(url, backend);
      if (routable.length !== 1 || routable[0] !== member) return false;
      // HAProxy takes a new leader in once its Patroni holds the leader key (/primary answers 200),
      // which can be before its PostgreSQL has left recovery: a write then would fail.
      return sqlUrls[member] === undefined || (await reachesPrimary(sqlUrls[member], spec.ca));
    };
  }
  else if (spec.readWriteUrl) {
    const url = spec.readWriteUrl;
    target.routedAlone = async () => {
      for (let i = 0; i < ROUTED_PROBES; i++) if (!(await reachesPrimary(url, spec.ca, spec.routerServerName))) return false;
      return true;
    };
  }
  return target;
}

/**
 * Patroni's maintenance mode ("pause", docs/pause.rst) on every group of `spec`, on or off, as
 * `patronictl pause/resume --wait` does it: PATCH /config {"pause": true} (off: null) at the first
 * member that takes it, then wait until every member that answers GET /patroni reports the state
 * (each member's HA loop picks it up within loop_wait). While paused, a primary whose leader-lock
 * update fails keeps running instead of demoting itself (ha.py), and nothing fails over.
 * @throws Error naming the group when no member takes the PATCH, or when a member still reports
 * the other state after `timeoutMs`.
 */
export async function setMaintenance(spec: PatroniHttpSpec, paused: boolean, options: { timeoutMs: number; pollMs?: number }): Promise<void> {
  const body = JSON.stringify({ pause: paused ? true : null });
  for (const { group, members } of spec.groups) {
    // Any member writes the group's config key in the DCS; try them in turn.
    let last: unknown;
    let done = false;
    for (const m of members) {
      try {
        await request(`${m.restUrl}/config`, { method: "PATCH", body, auth: spec.restAuth, timeoutMs: 10000, ca: spec.ca, serverName: m.serverName });
        done = true;
        break;
      } catch (error) {
        last = error;
      }
    }
    if (!done) throw new Error(`Patroni maintenance mode ${paused ? "on" : "off"}: no member of group ${group} took PATCH /config: ${(last as Error)?.message}`);
  }
  const deadline = Date.now() + options.timeoutMs;
  for (const { group, members } of spec.groups) {
    for (;;) {
      const states = await Promise.all(
        members.map((m) =>
          request(`${m.restUrl}/patroni`, { timeoutMs: 3000, ca: spec.ca, serverName: m.serverName }).then(
            (body) => ({ name: m.name, paused: (body as { pause?: boolean }).pause === true }),
            () => undefined,
          ),
        ),
      );
      const answered = states.filter((s): s is { name: string; paused: boolean } => s !== undefined);
      const pending = answered.filter((s) => s.paused !== paused).map((s) => s.name);
      if (answered.length > 0 && pending.length === 0) break;
      if (Date.now() > deadline) {
        throw new Error(`Patroni maintenance mode ${paused ? "on" : "off"}: group ${group}: ${answered.length === 0 ? "no member answered GET /patroni" : `${pending.join(", ")} still ${paused ? "not paused" : "paused"}`} after ${Math.round(options.timeoutMs / 1000)} s`);
      }
      await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 250));
    }
  }
}

// haproxy.cfg: read-write traffic to the coordinator group's primary, read-only traffic to its
// replicas, each chosen by Patroni's REST health checks (/primary, /replica).
import { isIP } from "node:net";
import type { Topology } from "../spec.ts";
import { PORTS, type Addressing } from "./types.ts";

export interface HaproxyRenderOptions {
  /** Where HAProxy writes its pid file (local runs); omitted in containers. */
  pidFile?: string;
  /** Bytes of WAL a replica may be behind and stay in the read-only pool (Patroni's `/replica?lag=`). */
  readOnlyMaxLagBytes?: number;
  /**
   * The cluster CA: Patroni's REST API speaks HTTPS, and each check verifies the node's certificate
   * against it and against the node's address (`verifyhost`). Absent: plain HTTP checks.
   */
  caFile?: string;
}

/** Name of the `resolvers` section rendered when backends are DNS names. */
export const HAPROXY_RESOLVERS = "platform";

/**
 * Backends named by DNS (containers, pods) move: a container started again or a rescheduled pod
 * gets another address. HAProxy then asks the platform's resolver (the nameservers of
 * /etc/resolv.conf: Docker's embedded 127.0.0.11, or the cluster DNS in a pod) every second, and
 * a name that does not resolve yet does not stop it from starting (`init-addr libc,none`: the
 * server stays in maintenance until its name resolves). Backends given as IP addresses (the
 * local runner's loopback addresses) need none of this.
 */
function resolversSection(): string {
  return `
resolvers ${HAPROXY_RESOLVERS}
    parse-resolv-conf
    resolve_retries 3
    timeout resolve 1s
    timeout retry 1s
    # A container being restarted does not resolve (NXDOMAIN) for a while: keep its last address
    # for 5 s, then put it in maintenance until its name resolves again.
    hold nx 5s
    hold valid 5s
`;
}

// Patroni answers GET /primary with 200 as soon as its node holds the leader key (api.py do_GET:
// ha.is_leader()), which is 0.1–1 s before the promotion ends; the body's "role" is "primary" only once
// pg_is_in_recovery() is false (get_postgresql_status). Both are required, so that no client reaches a
// new leader still in recovery: seen after etcd lost its majority and came back, when a query through
// PgBouncer ran on the coordinator's new leader 0.5 s before it left recovery.
const PRIMARY_ROLE = String.raw`"\"role\": ?\"primary\""`;

export function renderHaproxyCfg(topology: Topology, addressing: Addressing, options: HaproxyRenderOptions = {}): string {
  const listen = addressing.haproxy.listen;
  const coordinator = topology.groups[0];
  const byName = coordinator.some((node) => isIP(addressing.postgres(node).connect) === 0);
  const servers = coordinator
    .map((node) => {
      const address = addressing.postgres(node).connect;
      const verify = options.caFile ? ` verifyhost ${address}` : "";
      return `    server ${node.name} ${address}:${PORTS.postgres} check port ${PORTS.patroniRest}${verify}`;
    })
    .join("\n");
  // fall 2: a server is out after two failed checks in a row (one slow answer is not enough);
  // rise 1: in after one good one. shutdown-sessions closes a demoted server's client sessions at
  // once, so that PgBouncer reconnects to the new primary instead of waiting on a dead socket.
  const resolution = byName ? ` resolvers ${HAPROXY_RESOLVERS} resolve-prefer ipv4 init-addr libc,none` : "";
  // Only the checks use TLS (check-ssl); client traffic passes through in TCP mode, its TLS session
  // between the client and PostgreSQL.
  const tls = options.caFile ? ` check-ssl verify required ca-file ${options.caFile}` : "";
  const checks = (inter: string, fastinter: string, downinter: string) =>
    `default-server inter ${inter} fastinter ${fastinter} downinter ${downinter} fall 2 rise 1 on-marked-down shutdown-sessions${resolution}${tls}`;
  // Read-write: every 250 ms. In a planned switchover clients wait (PgBouncer paused) until the old
  // primary is out here, which can only start when its Patroni releases the leader key (/primary
  // answers 503 from then on): with `inter 1s` that took up to 1.25 s more, now at most 0.5 s; the
  // new primary is in within 250 ms of its /primary answering 200. The price: 4 GET /primary a
  // second per member (Patroni runs one status query for each).
  const readWriteChecks = checks("250ms", "250ms", "250ms");
  // Read-only: replicas come and go with no client waiting on them: a dead one is out within
  // ~1.25 s of its first failed check (the second comes after fastinter), a down one is checked
  // every 500 ms.
  const readOnlyChecks = checks("1s", "250ms", "500ms");
  // Patroni answers /replica?lag=N with 503 on a replica more than N bytes behind the primary.
  const replicaCheck = options.readOnlyMaxLagBytes === undefined ? "/replica" : `/replica?lag=${options.readOnlyMaxLagBytes}`;
  return `# Rendered by distributed-postgres-cluster; do not edit.
global
    maxconn 2000
${options.pidFile ? `    pidfile ${options.pidFile}\n` : ""}${byName ? resolversSection() : ""}
defaults
    mode tcp
    log global
    retries 2
    timeout connect 4s
    timeout client 30m
    timeout server 30m
    timeout check 2s

listen stats
    mode http
    bind ${listen}:${PORTS.haproxyStats}
    stats enable
    stats uri /
    # Prometheus scrapes HAProxy's built-in exporter here.
    http-request use-service prometheus-exporter if { path /metrics }

listen coordinator_primary
    bind ${listen}:${PORTS.haproxyReadWrite}
    option httpchk GET /primary
    http-check expect status 200
    http-check expect rstring ${PRIMARY_ROLE}
    ${readWriteChecks}
${servers}

listen coordinator_replicas
    bind ${listen}:${PORTS.haproxyReadOnly}
    balance roundrobin
    option httpchk GET ${replicaCheck}
    http-check expect status 200
    ${readOnlyChecks}
${servers}
`;
}

// haproxy.cfg: read-write traffic to the coordinator group's primary, read-only traffic to its
// replicas, each chosen by Patroni's REST health checks (/primary, /replica).
import type { Topology } from "../spec.ts";
import { PORTS, type Addressing } from "./types.ts";

export interface HaproxyRenderOptions {
  /** Where HAProxy writes its pid file (local runs); omitted in containers. */
  pidFile?: string;
  /** Bytes of WAL a replica may be behind and stay in the read-only pool (Patroni's `/replica?lag=`). */
  readOnlyMaxLagBytes?: number;
}

export function renderHaproxyCfg(topology: Topology, addressing: Addressing, options: HaproxyRenderOptions = {}): string {
  const listen = addressing.haproxy.listen;
  const coordinator = topology.groups[0];
  const servers = coordinator
    .map((node) => {
      const address = addressing.postgres(node).connect;
      return `    server ${node.name} ${address}:${PORTS.postgres} check port ${PORTS.patroniRest}`;
    })
    .join("\n");
  // inter 1s fall 2: a dead primary is out within ~1.25 s of its first failed check (the second
  // comes after fastinter); a down server is checked every 500 ms, so a new primary is in quickly.
  // shutdown-sessions closes a demoted server's client sessions at once, so that PgBouncer
  // reconnects to the new primary instead of waiting on a dead socket.
  const checks = "default-server inter 1s fastinter 250ms downinter 500ms fall 2 rise 1 on-marked-down shutdown-sessions";
  // Patroni answers /replica?lag=N with 503 on a replica more than N bytes behind the primary.
  const replicaCheck = options.readOnlyMaxLagBytes === undefined ? "/replica" : `/replica?lag=${options.readOnlyMaxLagBytes}`;
  return `# Rendered by distributed-postgres-cluster; do not edit.
global
    maxconn 2000
${options.pidFile ? `    pidfile ${options.pidFile}\n` : ""}
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
    ${checks}
${servers}

listen coordinator_replicas
    bind ${listen}:${PORTS.haproxyReadOnly}
    balance roundrobin
    option httpchk GET ${replicaCheck}
    http-check expect status 200
    ${checks}
${servers}
`;
}

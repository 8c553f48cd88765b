// One NetworkPolicy per group that admits only that group's clients, port by port, and a namespace
// policy that denies every other ingress. Who talks to whom (components and monitoring/prometheus.ts):
// - PostgreSQL 5432: the other members (replication, Citus), HAProxy, each node's postgres_exporter;
// - Patroni REST 8008: the other members (leader race, Citus workers -> coordinator), HAProxy's
//   checks, Prometheus, the rollout step's Job (ROLLOUT_STEP_KIND: roles, /config, /switchover);
//   etcd 2379: the Patroni members, Prometheus; etcd 2380: etcd's peers;
// - HAProxy 5000 (read-write): PgBouncer and the deploy steps' Jobs (deploy-step.ts, the rollout's
//   included: it checks the new leader is routed alone; the scaling step's: the rebalancer and the
//   drain are SQL on the coordinator); 5001 (read-only):
//   applications; 7000 (stats, /metrics): Prometheus;
// - PgBouncer 6432: applications, the deploy steps' Jobs (the rollout's: PAUSE around the
//   coordinator's switchover), the PgBouncer exporter;
// - Prometheus: Grafana; the exporters: Prometheus; Grafana: nobody inside the cluster.
// Applications (any namespace) carry the label CLIENT_LABEL=<cluster>; the deploy steps' pods are of
// this namespace, kind DEPLOY_STEP_KIND. Published ports (kubernetesServiceType LoadBalancer or NodePort) also admit
// kubernetesSourceRanges; their Services keep the client's address (externalTrafficPolicy Local) so
// that the policy sees it. A NetworkPolicy is enforced only by a network plugin that implements it.
import { PORTS } from "../../render/types.ts";
import type { WorkloadPort } from "../types.ts";
import { CLIENT_LABEL, KIND_LABEL, type Kind } from "./naming.ts";
import { DEPLOY_STEP_KIND, ROLLOUT_STEP_KIND, SCALING_STEP_KIND } from "./deploy-step.ts";

/**
 * A peer that may connect: pods of a kind of this cluster (same namespace; the deploy steps' Jobs
 * included), or the applications' labelled pods of any namespace.
 */
export type Peer = Kind | typeof DEPLOY_STEP_KIND | typeof ROLLOUT_STEP_KIND | typeof SCALING_STEP_KIND | "client";

/** The peers admitted to `port` of a group of `kind`. */
export function clientsOf(kind: Kind, port: number): Peer[] {
  switch (kind) {
    case "database":
      if (port === PORTS.postgres) return ["database", "haproxy", "postgres-exporter"];
      if (port === PORTS.patroniRest) return ["database", "haproxy", "prometheus", ROLLOUT_STEP_KIND];
      return [];
    case "etcd":
      if (port === PORTS.etcdClient) return ["database", "prometheus"];
      if (port === PORTS.etcdPeer) return ["etcd"];
      return [];
    case "haproxy":
      if (port === PORTS.haproxyReadWrite) return ["pgbouncer", DEPLOY_STEP_KIND, ROLLOUT_STEP_KIND, SCALING_STEP_KIND];
      if (port === PORTS.haproxyReadOnly) return ["client"];
      if (port === PORTS.haproxyStats) return ["prometheus"];
      return [];
    case "pgbouncer":
      return port === PORTS.pgbouncer ? ["client", DEPLOY_STEP_KIND, ROLLOUT_STEP_KIND, "pgbouncer-exporter"] : [];
    case "prometheus":
      return ["grafana"];
    case "postgres-exporter":
    case "pgbouncer-exporter":
      return ["prometheus"];
    default:
      return [];
  }
}

/** Comma-separated CIDRs of kubernetesSourceRanges, as a list (empty when none). */
export function parseSourceRanges(value: string): string[] {
  return value
    .split(",")
    .map((range) => range.trim())
    .filter((range) => range !== "");
}

function peerSelector(peer: Peer, clusterName: string) {
  if (peer === "client") return { namespaceSelector: {}, podSelector: { matchLabels: { [CLIENT_LABEL]: clusterName } } };
  return { podSelector: { matchLabels: { "app.kubernetes.io/part-of": clusterName, [KIND_LABEL]: peer } } };
}

/**
 * The NetworkPolicy spec of one group: ingress to each of its ports from that port's clients, and
 * from `sourceRanges` to its published ports when `published`. Ports nobody may reach get no rule.
 */
export function networkPolicySpec(
  clusterName: string,
  kind: Kind,
  selector: Record<string, string>,
  ports: WorkloadPort[],
  published: { sourceRanges: string[] } | undefined,
) {
  const ingress = ports.flatMap((p) => {
    const from: object[] = clientsOf(kind, p.port).map((peer) => peerSelector(peer, clusterName));
    if (published && p.publishedPort !== undefined) from.push(...published.sourceRanges.map((cidr) => ({ ipBlock: { cidr } })));
    return from.length > 0 ? [{ ports: [{ protocol: "TCP", port: p.port }], from }] : [];
  });
  return { podSelector: { matchLabels: selector }, policyTypes: ["Ingress"], ingress };
}

/** The namespace-wide policy: every pod isolated for ingress; the groups' own policies admit their clients. */
export const denyAllIngress = () => ({ podSelector: {}, policyTypes: ["Ingress"] });

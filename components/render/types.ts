// Inputs shared by the pure renderers. Platforms differ only in addresses and paths, given here.
import type { EtcdMember, PostgresNode } from "../spec.ts";
import type { TlsFilePaths } from "../tls/types.ts";

/** Passwords, plain: renderers run inside `apply`, so what they render stays a Pulumi secret. */
export interface ClusterSecrets {
  superuser: string;
  replication: string;
  rewind: string;
  restApi: string;
  app: string;
}

/** Role names are fixed; only their passwords are secret. */
export const ROLES = {
  superuser: "postgres",
  replication: "replicator",
  rewind: "rewind_user",
  restApi: "patroni",
  app: "app",
  /** The exporters' role: pg_monitor and nothing else (created by the migrations). */
  monitor: "exporter",
  /**
   * PgBouncer's `auth_user`: may only EXECUTE the lookup function of sql/migrations.ts (its SCRAM
   * verifier query); created by the migrations on the coordinator, password generated.
   */
  poolerLookup: "pgbouncer_auth",
  /**
   * PgBouncer's only `admin_users` entry (PAUSE, RESUME, RECONNECT, RELOAD): a name in PgBouncer's auth
   * file, no database role; password generated, never from the stack's password config.
   */
  poolerAdmin: "pgbouncer_admin",
} as const;

/**
 * The only credentials PgBouncer's auth file holds: all generated (never the rotated ClusterSecrets),
 * so a password rotation never changes PgBouncer's files.
 */
export interface PoolerCredentials {
  /** ROLES.poolerLookup's password (a database role). */
  lookup: string;
  /** ROLES.poolerAdmin's password (PgBouncer's admin console only). */
  admin: string;
  /** ROLES.monitor's password: the PgBouncer exporter's stats_users login (kept in the file so that
   * SHOW answers while the coordinator is unreachable). */
  monitor: string;
}

export const PORTS = {
  postgres: 5432,
  patroniRest: 8008,
  etcdClient: 2379,
  etcdPeer: 2380,
  /**
   * etcd's plain-HTTP /health and /metrics listener (`--listen-metrics-urls`), without client
   * certificates: what the Kubernetes probes use (the kubelet presents none, and the TLS client port
   * demands one), as kubeadm's etcd pod does. Serves no key-value API.
   */
  etcdMetrics: 2381,
  haproxyReadWrite: 5000,
  haproxyReadOnly: 5001,
  haproxyStats: 7000,
  pgbouncer: 6432,
} as const;

/** Where a process listens and the address others use to reach it. */
export interface Endpoint {
  listen: string;
  connect: string;
}

/** How a platform addresses the nodes: container names, pod DNS names, or loopback addresses. */
export interface Addressing {
  postgres(node: PostgresNode): Endpoint;
  etcd(member: EtcdMember): Endpoint;
  /** HAProxy, as PgBouncer reaches it. */
  haproxy: Endpoint;
  pgbouncer: Endpoint;
  /** The network pg_hba admits (CIDR). */
  clusterNetwork: string;
}

/** Paths inside one PostgreSQL node (a container, a pod or a local directory). */
export interface PostgresLayout {
  dataDir: string;
  binDir: string;
  socketDir: string;
  pgpassFile: string;
  /** Script Patroni runs once after bootstrap (creates the application role). */
  postBootstrapScript: string;
  /** File the post-bootstrap script reads the application password from. */
  appPasswordFile: string;
  /**
   * The node's CA, certificate and key: TLS for PostgreSQL, Patroni's REST API and Patroni's etcd
   * client. Absent: everything plain (a layout that has not turned TLS on yet).
   */
  tls?: TlsFilePaths;
  /** Patroni's on_role_change callback on Citus worker nodes (components/render/citus-promote.ts). */
  promoteCallbackScript: string;
  /** Patroni's restore_command (history files only) and pre_promote script (components/render/timeline-guard.ts). */
  timelineGuardScript: string;
}

// Every file the cluster runs on, rendered from one spec. Used by the components (inside `apply`,
// so secrets stay secret), by `npm run render`, by the local runner and by the tests.
import type { ClusterConfig, EtcdMember, PostgresNode, Topology } from "../spec.ts";
import { etcdArgs } from "./etcd.ts";
import { renderHaproxyCfg, type HaproxyRenderOptions } from "./haproxy.ts";
import { hasRoleChangeCallback, renderPatroniYml, renderPostBootstrapScript } from "./patroni.ts";
import { renderPromoteCallback } from "./citus-promote.ts";
import { renderTimelineGuard } from "./timeline-guard.ts";
import { renderPgbouncerIni, renderPgbouncerUserlist, type PgbouncerPaths } from "./pgbouncer.ts";
import type { Addressing, ClusterSecrets, PoolerCredentials, PostgresLayout } from "./types.ts";
import { ROUTER_CERTIFICATE } from "../tls/plan.ts";
import type { ClusterCertificates, TlsFilePaths } from "../tls/types.ts";

export * from "./types.ts";
export { etcdArgs, etcdEndpoints } from "./etcd.ts";
export { pgbouncerTlsLines } from "./pgbouncer.ts";
export { renderHaproxyCfg } from "./haproxy.ts";
export { clientTlsOptions, dynamicParameters, groupSynchronousMode, hasRoleChangeCallback, pgHba, patroniConfig, postgresParameters, postgresTlsParameters, renderPatroniYml, renderPostBootstrapScript, sizedParameters, synchronousNodeCount, wakesHaLoop } from "./patroni.ts";
export { POOLER_AUTH_QUERY, POOLER_LOOKUP_FUNCTION, renderPgbouncerIni, renderPgbouncerUserlist } from "./pgbouncer.ts";
export { renderPromoteCallback } from "./citus-promote.ts";
export { HISTORY_FETCH_SECONDS, renderTimelineGuard, restoreCommand, type TimelineGuardPaths } from "./timeline-guard.ts";

/** A file to deliver into a node; `secret` files hold passwords and must be mode 0600. */
export interface RenderedFile {
  path: string;
  content: string;
  secret: boolean;
  executable?: boolean;
}

export interface RenderedPostgresNode {
  node: PostgresNode;
  files: RenderedFile[];
}

export interface RenderedEtcdMember {
  member: EtcdMember;
  args: string[];
  /** Its CA, certificate and key, when the layout has TLS. */
  files: RenderedFile[];
}

export interface RenderedCluster {
  postgres: RenderedPostgresNode[];
  etcd: RenderedEtcdMember[];
  haproxy: RenderedFile[];
  pgbouncer: RenderedFile[];
}

/** Paths a platform chooses for each kind of process. */
export interface ClusterLayout {
  postgres(node: PostgresNode): PostgresLayout & { configFile: string };
  etcdDataDir(member: EtcdMember): string;
  /** Where an etcd member finds its CA, certificate and key; absent: etcd without TLS. */
  etcdTls?(member: EtcdMember): TlsFilePaths;
  haproxyConfigFile: string;
  haproxy: HaproxyRenderOptions;
  pgbouncerConfigFile: string;
  pgbouncer: PgbouncerPaths;
}

/**
 * The CA, certificate and key files of one service (the key secret: mode 0600, owned by the service).
 * @throws Error when the layout asks for TLS but no certificates, or none for this id, were given.
 */
export function renderTlsFiles(paths: TlsFilePaths, certificates: ClusterCertificates | undefined, id: string): RenderedFile[] {
  if (!certificates) throw new Error(`certificates: none given, but the layout turns TLS on for ${id}; issue them with components/tls (issueClusterCertificates)`);
  const issued = certificates.certificates[id];
  if (!issued) throw new Error(`certificates: none issued for ${JSON.stringify(id)}; the set has ${Object.keys(certificates.certificates).join(", ")}`);
  return [
    { path: paths.caFile, content: certificates.ca, secret: false },
    { path: paths.certFile, content: issued.cert, secret: false },
    { path: paths.keyFile, content: issued.key, secret: true },
  ];
}

export function renderPostgresNode(
  config: ClusterConfig,
  topology: Topology,
  node: PostgresNode,
  addressing: Addressing,
  layout: ClusterLayout,
  secrets: ClusterSecrets,
  certificates?: ClusterCertificates,
): RenderedFile[] {
  const paths = layout.postgres(node);
  return [
    ...(paths.tls ? renderTlsFiles(paths.tls, certificates, node.name) : []),
    { path: paths.configFile, content: renderPatroniYml(config, topology, node, addressing, paths, secrets), secret: true },
    { path: paths.postBootstrapScript, content: renderPostBootstrapScript(config, paths), secret: false, executable: true },
    { path: paths.appPasswordFile, content: secrets.app, secret: true },
    // History files from the other members, and no promotion past a newer timeline's fork (timeline-guard.ts).
    { path: paths.timelineGuardScript, content: renderTimelineGuard(config, topology, node, addressing, paths), secret: false, executable: true },
    // Worker nodes tell the coordinator of their promotion themselves, and quorum-mode members wake
    // their own HA loop once promoted (see citus-promote.ts).
    ...(hasRoleChangeCallback(config, topology, node)
      ? [{ path: paths.promoteCallbackScript, content: renderPromoteCallback(config, topology, node, addressing, paths), secret: false, executable: true }]
      : []),
  ];
}

/** HAProxy's files: haproxy.cfg, with the configuration's read-only lag bound. */
export function renderHaproxyFiles(config: ClusterConfig, topology: Topology, addressing: Addressing, layout: ClusterLayout): RenderedFile[] {
  const options = { ...layout.haproxy, readOnlyMaxLagBytes: config.readOnlyMaxLagBytes };
  return [{ path: layout.haproxyConfigFile, content: renderHaproxyCfg(topology, addressing, options), secret: false }];
}

/**
 * PgBouncer's files: pgbouncer.ini, its auth file (generated credentials only: no password of
 * ClusterSecrets, so a rotation changes none of these files) and, with TLS, the router's certificate.
 */
export function renderPgbouncerFiles(config: ClusterConfig, addressing: Addressing, layout: ClusterLayout, pooler: PoolerCredentials, certificates?: ClusterCertificates): RenderedFile[] {
  const tls = layout.pgbouncer.tls;
  return [
    { path: layout.pgbouncerConfigFile, content: renderPgbouncerIni(config, addressing, layout.pgbouncer), secret: false },
    { path: layout.pgbouncer.authFile, content: renderPgbouncerUserlist(pooler), secret: true },
    ...(tls ? renderTlsFiles(tls, certificates, ROUTER_CERTIFICATE) : []),
  ];
}

export function renderCluster(
  config: ClusterConfig,
  topology: Topology,
  addressing: Addressing,
  layout: ClusterLayout,
  secrets: ClusterSecrets,
  /** PgBouncer's generated credentials (renderPgbouncerFiles). */
  pooler: PoolerCredentials,
  certificates?: ClusterCertificates,
): RenderedCluster {
  const haproxyCa = layout.haproxy.caFile;
  return {
    postgres: topology.groups.flat().map((node) => ({
      node,
      files: renderPostgresNode(config, topology, node, addressing, layout, secrets, certificates),
    })),
    etcd: topology.etcd.map((member) => {
      const tls = layout.etcdTls?.(member);
      return {
        member,
        args: etcdArgs(topology, member, addressing, layout.etcdDataDir(member), tls),
        files: tls ? renderTlsFiles(tls, certificates, member.name) : [],
      };
    }),
    haproxy: [
      ...renderHaproxyFiles(config, topology, addressing, layout),
      // HAProxy verifies Patroni's certificates: it needs the CA certificate alone.
      ...(haproxyCa ? [{ path: haproxyCa, content: requireCertificates(certificates, "HAProxy").ca, secret: false }] : []),
    ],
    pgbouncer: renderPgbouncerFiles(config, addressing, layout, pooler, certificates),
  };
}

function requireCertificates(certificates: ClusterCertificates | undefined, what: string): ClusterCertificates {
  if (!certificates) throw new Error(`certificates: none given, but the layout turns TLS on for ${what}; issue them with components/tls (issueClusterCertificates)`);
  return certificates;
}

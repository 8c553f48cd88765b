// Every file the cluster runs on, rendered from one spec. Used by the components (inside `apply`,
// so secrets stay secret), by `npm run render`, by the local runner and by the tests.
import type { ClusterConfig, EtcdMember, PostgresNode, Topology } from "../spec.ts";
import { etcdArgs } from "./etcd.ts";
import { renderHaproxyCfg, type HaproxyRenderOptions } from "./haproxy.ts";
import { renderPatroniYml, renderPostBootstrapScript } from "./patroni.ts";
import { renderPromoteCallback } from "./citus-promote.ts";
import { renderPgbouncerIni, renderPgbouncerUserlist, type PgbouncerPaths } from "./pgbouncer.ts";
import type { Addressing, ClusterSecrets, PostgresLayout } from "./types.ts";

export * from "./types.ts";
export { etcdArgs, etcdEndpoints } from "./etcd.ts";
export { renderHaproxyCfg } from "./haproxy.ts";
export { dynamicParameters, groupSynchronousMode, patroniConfig, postgresParameters, renderPatroniYml, renderPostBootstrapScript, sizedParameters, synchronousNodeCount } from "./patroni.ts";
export { renderPgbouncerIni, renderPgbouncerUserlist } from "./pgbouncer.ts";
export { renderPromoteCallback } from "./citus-promote.ts";

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
  haproxyConfigFile: string;
  haproxy: HaproxyRenderOptions;
  pgbouncerConfigFile: string;
  pgbouncer: PgbouncerPaths;
}

export function renderPostgresNode(
  config: ClusterConfig,
  topology: Topology,
  node: PostgresNode,
  addressing: Addressing,
  layout: ClusterLayout,
  secrets: ClusterSecrets,
): RenderedFile[] {
  const paths = layout.postgres(node);
  return [
    { path: paths.configFile, content: renderPatroniYml(config, topology, node, addressing, paths, secrets), secret: true },
    { path: paths.postBootstrapScript, content: renderPostBootstrapScript(config, paths), secret: false, executable: true },
    { path: paths.appPasswordFile, content: secrets.app, secret: true },
    // Worker nodes tell the coordinator of their promotion themselves (see citus-promote.ts).
    ...(node.group > 0
      ? [{ path: paths.promoteCallbackScript, content: renderPromoteCallback(config, topology, node, addressing, paths), secret: false, executable: true }]
      : []),
  ];
}

/** HAProxy's files: haproxy.cfg, with the configuration's read-only lag bound. */
export function renderHaproxyFiles(config: ClusterConfig, topology: Topology, addressing: Addressing, layout: ClusterLayout): RenderedFile[] {
  const options = { ...layout.haproxy, readOnlyMaxLagBytes: config.readOnlyMaxLagBytes };
  return [{ path: layout.haproxyConfigFile, content: renderHaproxyCfg(topology, addressing, options), secret: false }];
}

export function renderCluster(
  config: ClusterConfig,
  topology: Topology,
  addressing: Addressing,
  layout: ClusterLayout,
  secrets: ClusterSecrets,
): RenderedCluster {
  return {
    postgres: topology.groups.flat().map((node) => ({
      node,
      files: renderPostgresNode(config, topology, node, addressing, layout, secrets),
    })),
    etcd: topology.etcd.map((member) => ({ member, args: etcdArgs(topology, member, addressing, layout.etcdDataDir(member)) })),
    haproxy: renderHaproxyFiles(config, topology, addressing, layout),
    pgbouncer: [
      { path: layout.pgbouncerConfigFile, content: renderPgbouncerIni(config, addressing, layout.pgbouncer), secret: false },
      { path: layout.pgbouncer.authFile, content: renderPgbouncerUserlist(secrets), secret: true },
    ],
  };
}

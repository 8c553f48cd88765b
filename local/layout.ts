// The local rendering: every node on its own loopback address, all state under one directory.
// Pure, like the container layout in components/render/container.ts; only addresses and paths differ.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import type { ClusterLayout } from "../components/render/index.ts";
import type { Addressing } from "../components/render/types.ts";
import type { TlsFilePaths } from "../components/tls/types.ts";
import { stackFileConfig } from "../components/stack-config.ts";
import { citusImageFor } from "../components/citus-image.ts";
import { DEFAULT_CONFIG, parseClusterConfig, type ClusterConfig, type EtcdMember, type PostgresNode, type Topology } from "../components/spec.ts";

export const PROJECT = "distributed-postgres-cluster";

/** The stack's config (`Pulumi.<stack>.yaml`) with the PostgreSQL major of this machine. */
export function localClusterConfig(stackFile: string, postgresMajor: number): ClusterConfig {
  const stack = stackFileConfig(parse(readFileSync(stackFile, "utf8")), PROJECT);
  // No image runs here, but validation checks postgresMajor against the Citus base image: name that
  // release's image for this machine's major (citusdata/citus:13.0.3 -> 13.0.3-pg15 on Debian 12).
  const baseImage = citusImageFor(String(stack.databaseBaseImage ?? DEFAULT_CONFIG.databaseBaseImage), postgresMajor);
  return parseClusterConfig({ ...stack, postgresMajor, databaseBaseImage: baseImage });
}

/**
 * The loopback block the local cluster lives in: `127.<N>.0.0/16`, N from `DPC_LOCAL_NETWORK`
 * (0–255, default 0). A second cluster on the same machine (a developer's own, beside the test
 * suite's) takes another N: the same ports, different addresses.
 * @throws Error naming the variable, its value and the allowed range.
 */
export function localNetworkOctet(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.DPC_LOCAL_NETWORK ?? "0";
  const octet = Number(raw);
  if (!/^\d{1,3}$/.test(raw) || octet > 255) {
    throw new Error(`DPC_LOCAL_NETWORK: ${JSON.stringify(raw)} is not allowed; expected an integer 0-255 (the second octet of 127.N.0.0/16)`);
  }
  return octet;
}

/** The router's address (HAProxy, PgBouncer, Prometheus): 127.N.0.1. */
export function routerAddress(): string {
  return `127.${localNetworkOctet()}.0.1`;
}

// 127.0.0.1 is refused by Patroni as a connect_address, so nodes get addresses of their own.
export function postgresAddress(topology: Topology, node: PostgresNode): string {
  const index = topology.groups.flat().findIndex((n) => n.name === node.name);
  return `127.${localNetworkOctet()}.2.${index + 1}`;
}

/** The single-node baseline the benchmark compares with (local/baseline.ts): 127.N.4.1. */
export function baselineAddress(): string {
  return `127.${localNetworkOctet()}.4.1`;
}

export function etcdAddress(member: EtcdMember): string {
  return `127.${localNetworkOctet()}.3.${member.index + 1}`;
}

export function localAddressing(topology: Topology): Addressing {
  const same = (address: string) => ({ listen: address, connect: address });
  return {
    postgres: (node) => same(postgresAddress(topology, node)),
    etcd: (member) => same(etcdAddress(member)),
    haproxy: same(routerAddress()),
    pgbouncer: same(routerAddress()),
    clusterNetwork: "127.0.0.0/8",
  };
}

export interface LocalPaths {
  stateDir: string;
  secretsFile: string;
  pgpassFile: string;
  processesFile: string;
  /** What the directory was made for (scope, groups, PostgreSQL major): see LocalCluster.up. */
  identityFile: string;
  logDir: string;
  nodeDir(name: string): string;
}

export function localPaths(stateDir: string): LocalPaths {
  return {
    stateDir,
    secretsFile: join(stateDir, "secrets.json"),
    pgpassFile: join(stateDir, "pgpass"),
    processesFile: join(stateDir, "processes.json"),
    identityFile: join(stateDir, "cluster.json"),
    logDir: join(stateDir, "log"),
    nodeDir: (name) => join(stateDir, name),
  };
}

/** A service's copies of the CA, its certificate and key, in its own directory (owned by postgres). */
export function serviceTlsPaths(dir: string): TlsFilePaths {
  return { caFile: join(dir, "ca.crt"), certFile: join(dir, "server.crt"), keyFile: join(dir, "server.key") };
}

export function localLayout(config: ClusterConfig, paths: LocalPaths): ClusterLayout {
  const router = paths.nodeDir("router");
  const routerTls = serviceTlsPaths(router);
  return {
    postgres: (node) => {
      const dir = paths.nodeDir(node.name);
      return {
        configFile: join(dir, "patroni.yml"),
        dataDir: join(dir, "data"),
        binDir: `/usr/lib/postgresql/${config.postgresMajor}/bin`,
        // Nodes share port 5432 on different addresses: each needs its own socket directory.
        socketDir: dir,
        pgpassFile: join(dir, "pgpass"),
        postBootstrapScript: join(dir, "post-bootstrap.sh"),
        appPasswordFile: join(dir, "app-password"),
        tls: serviceTlsPaths(dir),
        promoteCallbackScript: join(dir, "citus-after-promote.py"),
        timelineGuardScript: join(dir, "timeline-guard.py"),
      };
    },
    etcdDataDir: (member) => join(paths.nodeDir(member.name), "data"),
    etcdTls: (member) => serviceTlsPaths(paths.nodeDir(member.name)),
    haproxyConfigFile: join(router, "haproxy.cfg"),
    haproxy: { pidFile: join(router, "haproxy.pid"), caFile: routerTls.caFile },
    pgbouncerConfigFile: join(router, "pgbouncer.ini"),
    pgbouncer: { authFile: join(router, "userlist.txt"), socketDir: router, pidFile: join(router, "pgbouncer.pid"), tls: routerTls },
  };
}

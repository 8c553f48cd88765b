// Addresses and paths inside containers (docker) and pods (kubernetes): the shipped rendering.
import { tlsRouterNameList, type ClusterConfig, type Topology } from "../spec.ts";
import type { ClusterLayout } from "./index.ts";
import type { Addressing } from "./types.ts";
import type { TlsFilePaths } from "../tls/types.ts";

export const CONTAINER_PATHS = {
  configDir: "/etc/dpc",
  postgresHome: "/var/lib/postgresql",
  /** The named volume / persistent volume of each PostgreSQL node. */
  postgresVolume: "/var/lib/postgresql/patroni",
  etcdVolume: "/var/lib/etcd",
  /** Every service's CA, certificate and key (its own; the key mode 0600, owned by the service). */
  tlsDir: "/etc/dpc/tls",
} as const;

/**
 * The TLS files of any container or pod: the cluster CA, the service's own certificate and key. The
 * same paths in every service: each receives only its own certificate.
 */
export const CONTAINER_TLS: TlsFilePaths = {
  caFile: `${CONTAINER_PATHS.tlsDir}/ca.crt`,
  certFile: `${CONTAINER_PATHS.tlsDir}/server.crt`,
  keyFile: `${CONTAINER_PATHS.tlsDir}/server.key`,
};

/**
 * Names by which clients reach the router besides the rendered addresses, for its certificate (and
 * the coordinator nodes', components/tls/plan.ts): docker, `endpointHost` (the published ports, as
 * the machine running Pulumi and applications dial them); kubernetes, the shorter DNS names of the
 * PgBouncer and HAProxy Services that pods in the cluster may use (`<svc>`, `<svc>.<ns>`, `<svc>.<ns>.svc`).
 * Both: the stack's tlsRouterNames (a LoadBalancer's name or address, a DNS alias).
 */
export function containerRouterNames(config: ClusterConfig, topology: Topology): string[] {
  const extra = tlsRouterNameList(config.tlsRouterNames);
  if (config.platform !== "kubernetes") return [config.endpointHost, ...extra];
  const ns = config.kubernetesNamespace;
  return [...[`${topology.scope}-pgbouncer`, `${topology.scope}-haproxy`].flatMap((svc) => [svc, `${svc}.${ns}`, `${svc}.${ns}.svc`, `${svc}.${ns}.svc.cluster.local`]), ...extra];
}

/** Hostnames: a container name on the docker network, a pod DNS name behind a headless Service. */
export interface HostNaming {
  host(name: string): string;
}

export const dockerHostNaming: HostNaming = { host: (name) => name };

export function kubernetesHostNaming(namespace: string, serviceOf: (name: string) => string): HostNaming {
  return { host: (name) => `${name}.${serviceOf(name)}.${namespace}.svc.cluster.local` };
}

export function containerAddressing(config: ClusterConfig, topology: Topology, naming: HostNaming): Addressing {
  const any = "0.0.0.0";
  return {
    postgres: (node) => ({ listen: any, connect: naming.host(node.name) }),
    etcd: (member) => ({ listen: any, connect: naming.host(member.name) }),
    haproxy: { listen: any, connect: naming.host(`${topology.scope}-haproxy`) },
    pgbouncer: { listen: any, connect: naming.host(`${topology.scope}-pgbouncer`) },
    // The network peers connect from: docker's subnet, or the pod network on kubernetes.
    clusterNetwork: config.platform === "kubernetes" ? config.kubernetesPodCidr : config.networkSubnet,
  };
}

export function containerLayout(config: ClusterConfig): ClusterLayout {
  const { configDir, postgresVolume, etcdVolume } = CONTAINER_PATHS;
  return {
    postgres: () => ({
      configFile: `${configDir}/patroni.yml`,
      dataDir: `${postgresVolume}/data`,
      binDir: `/usr/lib/postgresql/${config.postgresMajor}/bin`,
      socketDir: "/var/run/postgresql",
      pgpassFile: `${postgresVolume}/pgpass`,
      postBootstrapScript: `${configDir}/post-bootstrap.sh`,
      appPasswordFile: `${configDir}/app-password`,
      promoteCallbackScript: `${configDir}/citus-after-promote.py`,
      timelineGuardScript: `${configDir}/timeline-guard.py`,
      tls: CONTAINER_TLS,
    }),
    etcdDataDir: () => `${etcdVolume}/data`,
    // TLS everywhere on the platforms: no plain mode (issue 14).
    etcdTls: () => CONTAINER_TLS,
    haproxyConfigFile: `${configDir}/haproxy.cfg`,
    haproxy: { caFile: CONTAINER_TLS.caFile },
    pgbouncerConfigFile: `${configDir}/pgbouncer.ini`,
    pgbouncer: { authFile: `${configDir}/userlist.txt`, socketDir: "/tmp", tls: CONTAINER_TLS },
  };
}

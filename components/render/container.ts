// Addresses and paths inside containers (docker) and pods (kubernetes): the shipped rendering.
import type { ClusterConfig, Topology } from "../spec.ts";
import type { ClusterLayout } from "./index.ts";
import type { Addressing } from "./types.ts";

export const CONTAINER_PATHS = {
  configDir: "/etc/dpc",
  postgresHome: "/var/lib/postgresql",
  /** The named volume / persistent volume of each PostgreSQL node. */
  postgresVolume: "/var/lib/postgresql/patroni",
  etcdVolume: "/var/lib/etcd",
} as const;

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
    }),
    etcdDataDir: () => `${etcdVolume}/data`,
    haproxyConfigFile: `${configDir}/haproxy.cfg`,
    haproxy: {},
    pgbouncerConfigFile: `${configDir}/pgbouncer.ini`,
    pgbouncer: { authFile: `${configDir}/userlist.txt`, socketDir: "/tmp" },
  };
}

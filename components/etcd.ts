// The etcd cluster Patroni uses as its DCS: one member per process, each with the full initial
// cluster list (rendered by components/render/etcd.ts). TLS on both ports, a client certificate of
// the cluster CA demanded on both (--client-cert-auth, --peer-client-cert-auth): each member gets its
// own certificate and key (the key 0600).
import * as pulumi from "@pulumi/pulumi";
import type { ClusterConfig, Topology } from "./spec.ts";
import { etcdArgs, etcdEndpoints, PORTS, renderTlsFiles } from "./render/index.ts";
import { containerAddressing, containerLayout, CONTAINER_PATHS, CONTAINER_TLS } from "./render/container.ts";
import type { ClusterCertificates } from "./tls/types.ts";
import type { MemberTurns, Platform } from "./platform/index.ts";

export interface EtcdArgs {
  /** Validated cluster configuration (image, member count). */
  readonly config: ClusterConfig;
  /** The planned topology; its `etcd` list names the members. */
  readonly topology: Topology;
  /** Where the members run. */
  readonly platform: Platform;
  /** The cluster's CA and certificates (secret): each member's own certificate and key. */
  readonly certificates: pulumi.Output<ClusterCertificates>;
  /** The members' turns for a rolling replacement (Docker: components/rolling-replacement.ts); omitted: none. */
  readonly turns?: MemberTurns;
}

/**
 * The member's health check (docker): etcdctl over TLS against its own client port on the loopback
 * address (the member's certificate names 127.0.0.1: certificatePlan's etcdLoopback), presenting the
 * member's own certificate, as etcd demands one.
 */
export function etcdHealthcheck(): string[] {
  return [
    "/usr/local/bin/etcdctl",
    `--endpoints=https://127.0.0.1:${PORTS.etcdClient}`,
    `--cacert=${CONTAINER_TLS.caFile}`,
    `--cert=${CONTAINER_TLS.certFile}`,
    `--key=${CONTAINER_TLS.keyFile}`,
    "endpoint",
    "health",
  ];
}

export class Etcd extends pulumi.ComponentResource {
  /** Client URLs on the cluster network (https), as Patroni and etcdctl take them. */
  readonly endpoints: string[];
  /** Member names. */
  readonly members: string[];

  constructor(name: string, args: EtcdArgs, opts?: pulumi.ComponentResourceOptions) {
    const { config, topology, platform, certificates, turns } = args;
    super("dpc:index:Etcd", name, { members: topology.etcd.map((m) => m.name) }, opts);

    const addressing = containerAddressing(config, topology, platform.hostNaming);
    const layout = containerLayout(config);
    // Kubernetes probes /health on the metrics listener (PORTS.etcdMetrics): the kubelet has no client certificate.
    const metrics = config.platform === "kubernetes" ? [`--listen-metrics-urls=http://0.0.0.0:${PORTS.etcdMetrics}`] : [];
    platform.deployGroup(
      {
        name: `${topology.scope}-etcd`,
        image: config.etcdImage,
        members: topology.etcd.map((member) => ({
          name: member.name,
          command: ["/usr/local/bin/etcd", ...etcdArgs(topology, member, addressing, layout.etcdDataDir(member), layout.etcdTls!(member)), ...metrics],
          files: certificates.apply((c) => renderTlsFiles(layout.etcdTls!(member), c, member.name)),
        })),
        ports: [{ port: PORTS.etcdClient }, { port: PORTS.etcdPeer }],
        volumePath: CONTAINER_PATHS.etcdVolume,
        healthcheck: etcdHealthcheck(),
        // The image has no shell (distroless): the platform must start etcd itself with its files in place.
        shell: false,
        // A changed member is replaced only once the one before it is healthy again: one at a time.
        ...(turns ? { turns } : {}),
      },
      // Children do not inherit a component's dependsOn: hand it to the resources themselves.
      { parent: this, dependsOn: opts?.dependsOn },
    );

    this.endpoints = etcdEndpoints(topology, addressing, true);
    this.members = topology.etcd.map((m) => m.name);
    this.registerOutputs({ endpoints: this.endpoints, members: this.members });
  }
}

// The etcd cluster Patroni uses as its DCS: one member per process, each with the full initial
// cluster list (rendered by components/render/etcd.ts).
import * as pulumi from "@pulumi/pulumi";
import type { ClusterConfig, Topology } from "./spec.ts";
import { etcdArgs, etcdEndpoints, PORTS } from "./render/index.ts";
import { containerAddressing, containerLayout, CONTAINER_PATHS } from "./render/container.ts";
import type { Platform } from "./platform/index.ts";

export interface EtcdArgs {
  /** Validated cluster configuration (image, member count). */
  readonly config: ClusterConfig;
  /** The planned topology; its `etcd` list names the members. */
  readonly topology: Topology;
  /** Where the members run. */
  readonly platform: Platform;
}

export class Etcd extends pulumi.ComponentResource {
  /** Client URLs on the cluster network, as Patroni and etcdctl take them. */
  readonly endpoints: string[];
  /** Member names. */
  readonly members: string[];

  constructor(name: string, args: EtcdArgs, opts?: pulumi.ComponentResourceOptions) {
    const { config, topology, platform } = args;
    super("dpc:index:Etcd", name, { members: topology.etcd.map((m) => m.name) }, opts);

    const addressing = containerAddressing(config, topology, platform.hostNaming);
    const layout = containerLayout(config);
    const clientCheck = `--endpoints=http://127.0.0.1:${PORTS.etcdClient}`;
    platform.deployGroup(
      {
        name: `${topology.scope}-etcd`,
        image: config.etcdImage,
        members: topology.etcd.map((member) => ({
          name: member.name,
          command: ["/usr/local/bin/etcd", ...etcdArgs(topology, member, addressing, layout.etcdDataDir(member))],
          files: [],
        })),
        ports: [{ port: PORTS.etcdClient }, { port: PORTS.etcdPeer }],
        volumePath: CONTAINER_PATHS.etcdVolume,
        healthcheck: ["/usr/local/bin/etcdctl", clientCheck, "endpoint", "health"],
      },
      // Children do not inherit a component's dependsOn: hand it to the resources themselves.
      { parent: this, dependsOn: opts?.dependsOn },
    );

    this.endpoints = etcdEndpoints(topology, addressing);
    this.members = topology.etcd.map((m) => m.name);
    this.registerOutputs({ endpoints: this.endpoints, members: this.members });
  }
}

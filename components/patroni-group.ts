// One HA group of PostgreSQL nodes run by Patroni: the Citus coordinator group (0) or a worker
// group (1..N). Every node carries its own rendered patroni.yml (its name, its addresses, its group).
import * as pulumi from "@pulumi/pulumi";
import type { ClusterConfig, Topology } from "./spec.ts";
import { PORTS, renderPostgresNode, type ClusterSecrets } from "./render/index.ts";
import { sharedMemoryMb } from "./render/patroni.ts";
import { containerAddressing, containerLayout, CONTAINER_PATHS, CONTAINER_TLS } from "./render/container.ts";
import type { ClusterCertificates } from "./tls/types.ts";
import type { MemberTurns, Platform } from "./platform/index.ts";

/**
 * The container's health check (docker): Patroni's /health (200 while PostgreSQL runs, on the primary
 * and on replicas alike) over HTTPS, verified against the cluster CA and the node's own name: its
 * certificate names its hostname, and --resolve sends that name to the loopback address. One command
 * serves the group, so the shell supplies each container's hostname (the database image has sh).
 */
export function patroniHealthcheck(): string[] {
  const port = PORTS.patroniRest;
  return [
    "sh",
    "-c",
    `exec curl -fsS -o /dev/null --cacert ${CONTAINER_TLS.caFile} --resolve "$(hostname):${port}:127.0.0.1" "https://$(hostname):${port}/health"`,
  ];
}

export interface PatroniGroupArgs {
  /** Validated cluster configuration. */
  readonly config: ClusterConfig;
  /** The planned topology; `groups[group]` lists this group's nodes. */
  readonly topology: Topology;
  /** Citus group number: 0 is the coordinator, 1..N the workers. */
  readonly group: number;
  /** Where the nodes run. */
  readonly platform: Platform;
  /** The cluster's passwords, a secret Output: rendered files that hold them stay secret. */
  readonly secrets: pulumi.Output<ClusterSecrets>;
  /** The members' turns for a rolling replacement (components/rolling-replacement.ts); omitted: none. */
  readonly turns?: MemberTurns;
  /** The cluster's CA and certificates (secret): each node gets its own certificate and key. */
  readonly certificates: pulumi.Output<ClusterCertificates>;
}

export class PatroniGroup extends pulumi.ComponentResource {
  /** Citus group number. */
  readonly group: number;
  /** Patroni member names (also their hostnames on the cluster network). */
  readonly members: string[];

  constructor(name: string, args: PatroniGroupArgs, opts?: pulumi.ComponentResourceOptions) {
    const { config, topology, group, platform, secrets, certificates, turns } = args;
    const nodes = topology.groups[group];
    // Only plain, non-secret facts go to super(): component inputs are saved in the state.
    super("dpc:index:PatroniGroup", name, { group, members: nodes.map((n) => n.name) }, opts);

    const addressing = containerAddressing(config, topology, platform.hostNaming);
    const layout = containerLayout(config);
    platform.deployGroup(
      {
        name,
        image: platform.databaseImage(),
        members: nodes.map((node) => ({
          name: node.name,
          // images/entrypoint.sh: fixes the files' owner and mode, then runs Patroni as postgres.
          command: ["/usr/local/bin/dpc-entrypoint"],
          files: pulumi.all([secrets, certificates]).apply(([s, c]) => renderPostgresNode(config, topology, node, addressing, layout, s, c)),
        })),
        ports: [{ port: PORTS.postgres }, { port: PORTS.patroniRest }],
        volumePath: CONTAINER_PATHS.postgresVolume,
        healthcheck: patroniHealthcheck(),
        // A replica's first start copies the primary with pg_basebackup.
        startSeconds: 120,
        resources: { cpus: config.databaseCpus, memoryMb: config.databaseMemoryMb },
        sharedMemoryMb: sharedMemoryMb(config),
        ...(turns ? { turns } : {}),
      },
      // Children do not inherit a component's dependsOn: hand it to the resources themselves.
      { parent: this, dependsOn: opts?.dependsOn },
    );

    this.group = group;
    this.members = nodes.map((n) => n.name);
    this.registerOutputs({ group: this.group, members: this.members });
  }
}


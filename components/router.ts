// The client path: PgBouncer (transaction pooling) -> HAProxy (Patroni REST checks /primary,
// /replica) -> the coordinator group's primary or replicas.
import * as pulumi from "@pulumi/pulumi";
import type { ClusterConfig, Topology } from "./spec.ts";
import { containerAddressing, containerLayout } from "./render/container.ts";
import { PORTS, renderHaproxyFiles, renderPgbouncerFiles, type PoolerCredentials } from "./render/index.ts";
import type { ClusterCertificates } from "./tls/types.ts";
import type { Platform, WorkloadPort } from "./platform/index.ts";

/**
 * PgBouncer refuses to run as root. A fixed numeric user (that of the postgres user in Alpine based
 * images) runs it and owns its files, whatever user the image declares.
 */
export const PGBOUNCER_USER = { uid: 70, gid: 70 } as const;

/** host:port of HAProxy's read-write listener as clients (and the machine running Pulumi) reach it. */
export function readWriteEndpointOf(config: ClusterConfig, topology: Topology, platform: Platform): string {
  return platform.clientEndpoint(`${topology.scope}-haproxy`, { port: PORTS.haproxyReadWrite, publishedPort: config.haproxyReadWritePort });
}

/** host:port of PgBouncer as clients (and the machine running Pulumi) reach it. */
export function pgbouncerEndpointOf(config: ClusterConfig, topology: Topology, platform: Platform): string {
  return platform.clientEndpoint(`${topology.scope}-pgbouncer`, { port: PORTS.pgbouncer, publishedPort: config.pgbouncerPort });
}

export interface RouterArgs {
  /** Validated cluster configuration (images, published ports, pool sizes). */
  readonly config: ClusterConfig;
  /** The planned topology; HAProxy routes to `groups[0]`, the coordinator group. */
  readonly topology: Topology;
  /** Where the processes run. */
  readonly platform: Platform;
  /**
   * PgBouncer's auth file's credentials (secret): generated ones only. The cluster's passwords are not
   * an input of the router: PgBouncer looks application roles up in the database (auth_query), so
   * rotating them changes no input of PgBouncer's or HAProxy's.
   */
  readonly pooler: pulumi.Output<PoolerCredentials>;
  /**
   * The cluster's CA and certificates (secret): HAProxy gets the CA (it verifies Patroni's REST API),
   * PgBouncer the router's certificate and key (clients verify it; it verifies the coordinator's).
   */
  readonly certificates: pulumi.Output<ClusterCertificates>;
  /**
   * What PgBouncer waits for besides HAProxy: the Schema step, whose migration 011 creates the role
   * its auth_query logs in as (ROLES.poolerLookup). A PgBouncer started before that role exists
   * refuses every application login ("no such user"): the first `up` of a stack deployed before
   * auth_query would otherwise replace the running PgBouncer before the migration ran. May resolve
   * later than the Router is constructed (the Schema needs HAProxy first).
   */
  readonly pgbouncerDependsOn?: pulumi.Input<pulumi.Resource>[];
}

export class Router extends pulumi.ComponentResource {
  /** host:port of HAProxy's read-write listener (the coordinator primary). */
  readonly readWriteEndpoint: string;
  /** host:port of HAProxy's read-only listener (the coordinator replicas). */
  readonly readOnlyEndpoint: string;
  /** host:port of PgBouncer, the endpoint applications use. */
  readonly pgbouncerEndpoint: string;
  /** HAProxy's resources: what needs the read-write listener, not PgBouncer, waits for these. */
  readonly haproxy: pulumi.Resource[];

  constructor(name: string, args: RouterArgs, opts?: pulumi.ComponentResourceOptions) {
    const { config, topology, platform, certificates } = args;
    super("dpc:index:Router", name, { scope: topology.scope }, opts);

    const addressing = containerAddressing(config, topology, platform.hostNaming);
    const layout = containerLayout(config);
    const haproxyName = `${topology.scope}-haproxy`;
    const pgbouncerName = `${topology.scope}-pgbouncer`;
    const readWrite: WorkloadPort = { port: PORTS.haproxyReadWrite, publishedPort: config.haproxyReadWritePort };
    const readOnly: WorkloadPort = { port: PORTS.haproxyReadOnly, publishedPort: config.haproxyReadOnlyPort };
    const pooler: WorkloadPort = { port: PORTS.pgbouncer, publishedPort: config.pgbouncerPort };

    const haproxy = platform.deployGroup(
      {
        name: haproxyName,
        image: config.haproxyImage,
        members: [
          {
            name: haproxyName,
            // -W -db: master-worker mode in the foreground, as the official image runs it.
            command: ["haproxy", "-W", "-db", "-f", layout.haproxyConfigFile],
            // haproxy.cfg and the CA its checks verify Patroni's certificates against (public: 0644).
            files: certificates.apply((c) => [
              ...renderHaproxyFiles(config, topology, addressing, layout),
              { path: layout.haproxy.caFile!, content: c.ca, secret: false },
            ]),
          },
        ],
        ports: [readWrite, readOnly, { port: PORTS.haproxyStats }],
        // The image has bash but no curl or nc: open a TCP connection to the stats listener.
        healthcheck: ["bash", "-c", `exec 3<>/dev/tcp/127.0.0.1/${PORTS.haproxyStats}`],
      },
      // Children do not inherit a component's dependsOn: hand it to the resources themselves.
      { parent: this, dependsOn: opts?.dependsOn },
    );

    platform.deployGroup(
      {
        name: pgbouncerName,
        image: config.pgbouncerImage,
        members: [
          {
            name: pgbouncerName,
            command: ["pgbouncer", layout.pgbouncerConfigFile],
            // pgbouncer.ini, the auth file and the router's certificate; the key 0600, owned by PgBouncer's user.
            files: pulumi.all([args.pooler, certificates]).apply(([p, c]) => renderPgbouncerFiles(config, addressing, layout, p, c)),
          },
        ],
        ports: [pooler],
        healthcheck: ["sh", "-c", `nc -z 127.0.0.1 ${PORTS.pgbouncer}`],
        runAs: PGBOUNCER_USER,
      },
      { parent: this, dependsOn: [...haproxy, ...(args.pgbouncerDependsOn ?? [])] },
    );
    this.haproxy = haproxy;

    this.readWriteEndpoint = readWriteEndpointOf(config, topology, platform);
    this.readOnlyEndpoint = platform.clientEndpoint(haproxyName, readOnly);
    this.pgbouncerEndpoint = pgbouncerEndpointOf(config, topology, platform);
    this.registerOutputs({
      readWriteEndpoint: this.readWriteEndpoint,
      readOnlyEndpoint: this.readOnlyEndpoint,
      pgbouncerEndpoint: this.pgbouncerEndpoint,
    });
  }
}

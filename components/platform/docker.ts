// The Docker platform: one user-defined network (DNS by container name), a named volume per
// stateful member, one container per process. The database image is built locally from images/.
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { ClusterConfig } from "../spec.ts";
import { dockerHostNaming } from "../render/container.ts";
import { canonicalCpus, goDuration } from "./docker-canonical.ts";
import { containerFingerprint, FINGERPRINT_LABEL } from "./docker-fingerprint.ts";
import type { DeployOptions, MemberTurns, Platform, WorkloadFile, WorkloadGroup, WorkloadMember, WorkloadPort } from "./types.ts";

/** SYN retransmissions before a TCP connect from a container fails (Linux default 6, about 127 s). */
export const TCP_SYN_RETRIES = 3;

/** Build context of the database image, relative to the project directory (where Pulumi runs the program). */
export const DATABASE_IMAGE_CONTEXT = "images";

/** Healthcheck timings, seconds (registered as Go durations: the provider's read-back form). */
const HEALTH = { intervalSeconds: 5, timeoutSeconds: 3, retries: 3, defaultStartSeconds: 10 };

/**
 * Seconds a stateless container (HAProxy, PgBouncer, exporters) gets to stop when Pulumi deletes it:
 * Docker's own `docker stop` default. Without destroyGraceSeconds the provider stops with a zero
 * timeout, killing the process at once.
 */
export const STATELESS_STOP_SECONDS = 10;

/** The `cpus` string of a group's members: the provider's read-back form (validated in spec.ts). */
export function containerCpus(cpus: number): string {
  const canonical = canonicalCpus(cpus);
  if (canonical === undefined) throw new Error(`docker platform: ${cpus} CPUs have no form the provider reads back unchanged`);
  return canonical;
}

/**
 * Stop settings of a group's containers. Groups with data get dockerStopGraceSeconds both ways:
 * `destroyGraceSeconds` is what the provider passes to `docker stop` when Pulumi replaces or deletes
 * the container (not read back, and changing it never replaces anything); `stopTimeout` is the
 * container's own setting, used by `docker stop` without -t and when dockerd or the host shuts down
 * (it forces replacement when changed, so it is set once, from config). Patroni stops PostgreSQL
 * with a fast shutdown and its shutdown checkpoint within that time; otherwise crash recovery, or
 * a rewind of a former primary, follows.
 */
export function stopSettings(group: Pick<WorkloadGroup, "volumePath">, config: Pick<ClusterConfig, "dockerStopGraceSeconds">): { destroyGraceSeconds: number; stopTimeout?: number } {
  if (!group.volumePath) return { destroyGraceSeconds: STATELESS_STOP_SECONDS };
  return { destroyGraceSeconds: config.dockerStopGraceSeconds, stopTimeout: config.dockerStopGraceSeconds };
}

function uploadMode(file: WorkloadFile): string {
  if (file.secret) return file.executable ? "0700" : "0600";
  return file.executable ? "0755" : "0644";
}

/**
 * The container's inputs with its fingerprint label, and its image held back until the member's turn
 * (components/rollout/replacement.ts): the Node SDK registers a resource once all its inputs are
 * known, so the engine replaces the container only in its turn. The fingerprint is not secret (an
 * HMAC under a cluster secret), nor is the turn: neither makes another input secret.
 */
function gatedArgs(name: string, args: docker.ContainerArgs, turns: MemberTurns): docker.ContainerArgs {
  const fingerprint = pulumi.unsecret(
    pulumi.all([pulumi.output(args as unknown as Record<string, unknown>), turns.key]).apply(([inputs, key]) => containerFingerprint(inputs as Record<string, unknown>, key)),
  );
  const turn = pulumi.unsecret(fingerprint.apply((value) => turns.turn(name, value).then(() => value)));
  return {
    ...args,
    labels: pulumi.all([pulumi.output(args.labels ?? []), fingerprint]).apply(([labels, value]) => [...(labels ?? []), { label: FINGERPRINT_LABEL, value }]),
    image: pulumi.all([args.image, turn]).apply(([image]) => image),
  };
}

function toUploads(files: WorkloadFile[], group: WorkloadGroup): docker.types.input.ContainerUpload[] {
  return files.map((file) => ({
    file: file.path,
    content: file.content,
    permissions: uploadMode(file),
    // Numeric ids: names would be resolved on the host running Pulumi, not in the image.
    ...(group.runAs ? { owner: String(group.runAs.uid), group: String(group.runAs.gid) } : {}),
  }));
}

export class DockerPlatform implements Platform {
  readonly hostNaming = dockerHostNaming;
  private readonly network: docker.Network;
  private readonly image: docker.Image;
  private readonly containers = new Map<string, docker.Container>();

  constructor(private readonly config: ClusterConfig, parent: pulumi.Resource) {
    const scope = config.clusterName;
    this.network = new docker.Network(
      `${scope}-network`,
      { name: `${scope}-network`, driver: "bridge", ipamConfigs: [{ subnet: config.networkSubnet }] },
      // A fixed name cannot exist twice: delete the old network before creating its replacement.
      { parent, deleteBeforeReplace: true },
    );
    this.image = new docker.Image(
      `${scope}-postgres-image`,
      {
        imageName: `${scope}-postgres:pg${config.postgresMajor}`,
        // No `dockerfile`: the provider then takes the Dockerfile at the root of the context.
        build: {
          context: DATABASE_IMAGE_CONTEXT,
          args: { BASE_IMAGE: config.databaseBaseImage, PG_MAJOR: String(config.postgresMajor) },
        },
        // Built for the local docker engine only; there is no registry to push to.
        skipPush: true,
      },
      { parent },
    );
  }

  databaseImage(): pulumi.Input<string> {
    // The digest, not the tag: a rebuilt image then replaces the containers that run it.
    return this.image.repoDigest;
  }

  clientEndpoint(_member: string, port: WorkloadPort): string {
    // Published ports are bound on the docker host, which clients reach as endpointHost.
    return `${this.config.endpointHost}:${port.publishedPort ?? port.port}`;
  }

  /** None here: the published ports reach the database from the Pulumi process, which runs the steps. */
  runDeployStep(): undefined {
    return undefined;
  }

  /**
   * The container's address on the cluster network, as Docker reports it: the Docker host reaches its
   * bridge networks, so `pulumi up` run there (the local engine) reaches Patroni's REST API; a remote
   * DOCKER_HOST's bridge is not reachable from here (README, "Rolling changes").
   */
  memberAddress(member: string): pulumi.Input<string> {
    const container = this.containers.get(member);
    if (!container) throw new Error(`docker platform: no container ${member} deployed`);
    return container.networkDatas.apply((networks) => networks?.find((n) => n.ipAddress)?.ipAddress ?? member);
  }

  deployGroup(group: WorkloadGroup, opts: DeployOptions): pulumi.Resource[] {
    return group.members.flatMap((member) => this.deployMember(group, member, opts));
  }

  private deployMember(group: WorkloadGroup, member: WorkloadMember, opts: DeployOptions): pulumi.Resource[] {
    // retainOnDelete: `pulumi destroy` (or a smaller topology) leaves the volume in the engine, and a
    // later `up` with the same names adopts it (creating a volume that exists returns it).
    const volume = group.volumePath
      ? new docker.Volume(
          `${member.name}-data`,
          { name: `${member.name}-data` },
          { parent: opts.parent, deleteBeforeReplace: true, retainOnDelete: this.config.retainDataOnDestroy },
        )
      : undefined;
    const health = group.healthcheck;
    const args: docker.ContainerArgs = {
      name: member.name,
      hostname: member.name,
      image: group.image,
      entrypoints: member.command,
      envs: Object.entries(member.env ?? {}).map(([key, value]) => `${key}=${value}`),
      // Uploaded before the container starts; secret contents stay secret Outputs.
      uploads: pulumi.output(member.files).apply((files) => toUploads(files, group)),
      networksAdvanced: [{ name: this.network.name, aliases: [member.name] }],
      // Peers are found by name through Docker's embedded DNS, which forwards names it does not know
      // (a killed peer's) to the host's resolvers; where those do not answer, every lookup of a dead
      // peer waited for the client's timeout (1 s here: Patroni's leader race asks the dead former
      // leader's REST API, ha.py fetch_node_status, and Citus re-dials the dead worker). An explicit
      // `ndots` makes the embedded DNS answer a single-label name it does not know at once, empty,
      // instead of forwarding it (libnetwork resolver.go ServeDNS, `NdotsSet()`; members' names have
      // no dot). timeout/attempts bound any other lookup to one try of 1 s.
      dnsOpts: ["ndots:1", "timeout:1", "attempts:1"],
      // A TCP connect to an address nobody holds any more (a removed container's) gives up after
      // TCP_SYN_RETRIES retransmissions (1 + 2 + 4 + 8 s) instead of Linux's 6 (127 s): PostgreSQL's
      // fast shutdown waits for the Citus maintenance daemon, which sends a cancel request (libpq
      // PQcancel, no timeout of its own) to each peer it was talking to; during `pulumi destroy`
      // that made clean stops take 62–75 s ("could not issue cancel request ... connect() failed:
      // error 110/113" in the containers' last lines). Namespaced per container (net.*).
      sysctls: { "net.ipv4.tcp_syn_retries": String(TCP_SYN_RETRIES) },
      // ip and protocol as the provider defaults and reads them back: IPv4 only, tcp.
      ports: group.ports
        .filter((p) => p.publishedPort !== undefined)
        .map((p) => ({ internal: p.port, external: p.publishedPort, ip: p.publishAddress ?? "0.0.0.0", protocol: "tcp" })),
      volumes: volume ? [{ volumeName: volume.name, containerPath: group.volumePath }] : [],
      healthcheck: {
        tests: ["CMD", ...health],
        interval: goDuration(HEALTH.intervalSeconds),
        timeout: goDuration(HEALTH.timeoutSeconds),
        retries: HEALTH.retries,
        startPeriod: goDuration(group.startSeconds ?? HEALTH.defaultStartSeconds),
      },
      restart: "unless-stopped",
      ...(group.runAs ? { user: `${group.runAs.uid}:${group.runAs.gid}` } : {}),
      ...(group.resources
        ? { cpus: containerCpus(group.resources.cpus), memory: group.resources.memoryMb }
        : {}),
      // MiB, as the provider takes it.
      ...(group.sharedMemoryMb ? { shmSize: group.sharedMemoryMb } : {}),
      labels: [
        { label: "dpc.cluster", value: this.config.clusterName },
        { label: "dpc.group", value: group.name },
      ],
      ...stopSettings(group, this.config),
    };
    const container = new docker.Container(
      member.name,
      group.turns ? gatedArgs(member.name, args, group.turns) : args,
      {
        parent: opts.parent,
        dependsOn: opts.dependsOn,
        // Fixed container names and host ports: the old container must go before its replacement starts.
        deleteBeforeReplace: true,
      },
    );
    this.containers.set(member.name, container);
    return volume ? [volume, container] : [container];
  }
}

// The Docker platform's rolling replacement, wired into the Pulumi program: the Patroni groups'
// containers are declared one member at a time when their inputs changed (a new database image,
// databaseMemoryMb or databaseCpus, files that carry a changed password), in rollGroup's order, by
// components/rollout/replacement.ts. It runs in the program itself during `pulumi up`, on the Docker
// host: it reads each container's fingerprint label and address from the engine (the provider's
// `docker:host`, DOCKER_HOST or the default socket) and talks to Patroni's REST API at those
// addresses, to PgBouncer's admin console and HAProxy's read-write listener at their published
// ports. In a preview nothing waits and nothing is asked.
import * as pulumi from "@pulumi/pulumi";
import type { Topology, ClusterConfig } from "./spec.ts";
import { PORTS, ROLES, type ClusterSecrets } from "./render/index.ts";
import type { MemberTurns } from "./platform/index.ts";
import { dockerSocketPath, inspectContainer } from "./platform/docker-engine-api.ts";
import { FINGERPRINT_LABEL } from "./platform/docker-fingerprint.ts";
import { patroniHttpTarget, setMaintenance, type PatroniHttpSpec, type PatroniMemberUrl } from "./rollout/patroni-http.ts";
import { RollingReplacement, type ReplacementEnvironment, type ReplacementOptions } from "./rollout/replacement.ts";
import { EtcdRollingReplacement, type EtcdReplacementEnvironment, type EtcdReplacementOptions } from "./rollout/etcd-replacement.ts";
import { ROLLOUT_STEP_TIMEOUT_SECONDS } from "./postgres-config.ts";
import { dynamicParameters } from "./render/patroni.ts";

let override:
  | {
      environment?: ReplacementEnvironment;
      options?: ReplacementOptions;
      onCreate?: (roll: RollingReplacement) => void;
      etcdEnvironment?: EtcdReplacementEnvironment;
      etcdOptions?: EtcdReplacementOptions;
      onCreateEtcd?: (roll: EtcdRollingReplacement) => void;
    }
  | undefined;

/**
 * Tests only: the environment (engine and Patroni) every rolling replacement created afterwards uses
 * instead of the real ones (omitted: the real ones), its options, and a callback that receives each
 * RollingReplacement created; the same for the etcd members' roll. undefined: the real ones again,
 * with the program's options.
 */
export function useReplacementEnvironment(value: typeof override): void {
  override = value;
}

export interface RollingReplacementArgs {
  readonly config: ClusterConfig;
  readonly topology: Topology;
  /** The passwords the cluster is given (secret). */
  readonly secrets: pulumi.Output<ClusterSecrets>;
  /** The passwords before this update's rotation (secret; undefined: none), which members not yet re-created still check. */
  readonly previous?: pulumi.Output<ClusterSecrets | undefined>;
  /** host:port of HAProxy's read-write listener, as this machine reaches it. */
  readonly readWriteEndpoint: string;
  /**
   * PgBouncer's admin console as ROLES.poolerAdmin, at its published port (secret): a generated
   * credential no rotation changes, so one URL serves members old and new.
   */
  readonly poolerAdminUrl: pulumi.Output<string>;
  /** The cluster CA certificate (PEM): Patroni, PgBouncer and PostgreSQL are verified against it. */
  readonly ca: pulumi.Output<string>;
}

/** The real environment: the Docker engine at `socketPath`, Patroni at the containers' addresses. */
function dockerEnvironment(socketPath: string, credentials: Promise<{ current: ClusterSecrets; previous?: ClusterSecrets; ca: string; poolerAdminUrl: string }>, args: RollingReplacementArgs): ReplacementEnvironment {
  return {
    async deployed(member) {
      // A group's roll begins by reading its containers: not before the etcd roll has resumed Patroni.
      await etcdRollEnded;
      const container = await inspectContainer(socketPath, member);
      if (!container) return undefined;
      return { fingerprint: container.labels[FINGERPRINT_LABEL], running: container.running, healthy: container.healthy, ...(container.ipAddress ? { address: container.ipAddress } : {}) };
    },
    async target(group, addresses) {
      const { current, previous, ca, poolerAdminUrl } = await credentials;
      const sets = previous ? [current, previous] : [current];
      const members = restMembers(args.topology.groups[group].map((n) => n.name), addresses);
      const superuser = (s: ClusterSecrets, endpoint: string, database: string) => `postgresql://${ROLES.superuser}:${encodeURIComponent(s.superuser)}@${endpoint}/${database}`;
      return patroniHttpTarget({
        groups: [{ group, members }],
        ca,
        restAuth: restAuth(sets),
        // PgBouncer's own admin user; then the superuser, PgBouncer's admin before that user existed:
        // the first `up` after the upgrade rolls the groups while the PgBouncer deployed before runs.
        poolerAdminUrl: [poolerAdminUrl, ...sets.map((s) => superuser(s, new URL(poolerAdminUrl).host, "pgbouncer"))],
        // The roles already have the current passwords (the rotation ran first).
        readWriteUrl: superuser(current, args.readWriteEndpoint, "postgres"),
        // A rotation of the REST API password: the members not yet re-created announce a worker's
        // switchover to a coordinator leader that already checks the new password, and are refused
        // (Patroni ignores the 401): PgBouncer holds the clients instead, until pg_dist_node names
        // the new worker leader. `previous` stays until the next rotation: later rolls pause PgBouncer
        // around worker switchovers too (all clients wait ~2 s instead of the group's queries alone).
        ...(previous && previous.restApi !== current.restApi ? { workerRoutingUrl: superuser(current, args.readWriteEndpoint, args.config.database) } : {}),
        // CHECKPOINT on the leader before its switchover (the Docker host is on the cluster network,
        // which pg_hba admits): its shutdown checkpoint, and PgBouncer's pause, get short.
        memberSqlUrls: Object.fromEntries(members.map((m) => [m.name, superuser(current, `${addresses[m.name]}:${PORTS.postgres}`, "postgres")])),
      });
    },
  };
}

/** Resolves with an Output's value (only ever awaited outside a preview, where it is known). */
function valueOf<T>(output: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => output.apply((value) => resolve(value)));
}

/**
 * The turns of every Patroni group's members (the Docker platform gates each container on its
 * member's turn). Groups are rolled in topology order, one at a time.
 */
export function rollingReplacement(args: RollingReplacementArgs): MemberTurns {
  const key = args.secrets.apply((s) => s.restApi);
  const socketPath = dockerSocketPath(new pulumi.Config("docker").get("host"));
  const create = (): RollingReplacement | undefined => {
    let environment = override?.environment;
    if (!environment) {
      if (!socketPath) return undefined;
      const credentials = valueOf(pulumi.all([args.secrets, args.previous ?? pulumi.output(undefined), args.ca, args.poolerAdminUrl])).then(([current, previous, ca, poolerAdminUrl]) => ({
        current,
        ca,
        poolerAdminUrl,
        ...(previous ? { previous } : {}),
      }));
      environment = dockerEnvironment(socketPath, credentials, args);
    }
    const created = new RollingReplacement(groupsOf(args.topology), environment, {
      ...(override?.options ?? {
        log: (line) => pulumi.log.info(line),
        stepTimeoutMs: ROLLOUT_STEP_TIMEOUT_SECONDS * 1000,
        // The engine stops the old container first, with the grace period it was given.
        replaceTimeoutMs: (args.config.dockerStopGraceSeconds + ROLLOUT_STEP_TIMEOUT_SECONDS) * 1000,
      }),
      // The parameters PostgresConfig applies afterwards (the same set): a replaced member starts with them.
      parameters: dynamicParameters(args.config),
    });
    override?.onCreate?.(created);
    return created;
  };
  return gatedTurns(key, create, "rolling replacement: the Docker engine is not reached through a unix socket here; changed database containers are replaced without ordering (README, \"Rolling changes\")");
}

/** What the etcd roll needs to pause and resume Patroni: the REST API's passwords and the cluster CA. */
export interface PatroniAccess {
  /** The passwords the cluster is given (secret). */
  readonly secrets: pulumi.Output<ClusterSecrets>;
  /** The passwords before this update's rotation (secret; undefined: none), which members not yet re-created still check. */
  readonly previous?: pulumi.Output<ClusterSecrets | undefined>;
  /** The cluster CA certificate (PEM). */
  readonly ca: pulumi.Output<string>;
}

/** Seconds every Patroni member has to report a change of maintenance mode (its HA loop runs every loop_wait). */
const MAINTENANCE_TIMEOUT_SECONDS = 60;

/**
 * Patroni's REST API on every member whose container runs, at the container's address (its
 * certificate names its hostname, the member's name), with the REST passwords to try.
 */
async function patroniSpec(socketPath: string, topology: Topology, access: Promise<{ current: ClusterSecrets; previous?: ClusterSecrets; ca: string }>): Promise<PatroniHttpSpec> {
  const { current, previous, ca } = await access;
  const groups = await Promise.all(
    topology.groups.map(async (nodes, group) => {
      const addresses = Object.fromEntries(await Promise.all(nodes.map(async (n) => [n.name, (await inspectContainer(socketPath, n.name))?.ipAddress] as const)));
      return { group, members: restMembers(nodes.map((n) => n.name), addresses) };
    }),
  );
  return { groups, ca, restAuth: restAuth(previous ? [current, previous] : [current]) };
}

/**
 * The REST API of each of `names` that has an address: dialled at the container's address, its
 * certificate names its hostname (the member's name).
 */
function restMembers(names: string[], addresses: Record<string, string | undefined>): PatroniMemberUrl[] {
  return names.filter((name) => addresses[name]).map((name) => ({ name, restUrl: `https://${addresses[name]}:${PORTS.patroniRest}`, serverName: name }));
}

/** "user:password" of the REST API for each set of passwords, in the order to try them. */
function restAuth(sets: ClusterSecrets[]): string[] {
  return sets.map((s) => `${ROLES.restApi}:${s.restApi}`);
}

/**
 * Settles once the etcd roll of this `pulumi up` (if any) has ended; the Patroni groups' roll waits
 * for it, as Patroni does not start PostgreSQL in a replaced container while the cluster is paused.
 */
let etcdRollEnded: Promise<unknown> = Promise.resolve();

/**
 * The turns of the etcd members (the Docker platform gates each etcd container on its turn): a
 * changed etcd container is replaced only once the previous one is running and healthy again, with
 * every Patroni group in maintenance mode meanwhile (components/rollout/etcd-replacement.ts).
 * `key`: the fingerprints' key (a cluster secret).
 */
export function etcdRollingReplacement(config: ClusterConfig, topology: Topology, key: pulumi.Output<string>, access: PatroniAccess): MemberTurns {
  const socketPath = dockerSocketPath(new pulumi.Config("docker").get("host"));
  const create = (): EtcdRollingReplacement | undefined => {
    let environment = override?.etcdEnvironment;
    if (!environment) {
      if (!socketPath) return undefined;
      const credentials = valueOf(pulumi.all([access.secrets, access.previous ?? pulumi.output(undefined), access.ca])).then(([current, previous, ca]) => ({
        current,
        ca,
        ...(previous ? { previous } : {}),
      }));
      environment = {
        async deployed(member) {
          const container = await inspectContainer(socketPath, member);
          return container ? { fingerprint: container.labels[FINGERPRINT_LABEL], running: container.running, healthy: container.healthy } : undefined;
        },
        async maintenance(paused) {
          await setMaintenance(await patroniSpec(socketPath, topology, credentials), paused, { timeoutMs: MAINTENANCE_TIMEOUT_SECONDS * 1000 });
        },
      };
    }
    const created = new EtcdRollingReplacement(
      topology.etcd.map((m) => m.name),
      environment,
      override?.etcdOptions ?? {
        log: (line) => pulumi.log.info(line),
        // The old container is stopped with the data containers' grace period (etcd has a volume);
        // the new one's health check then runs every few seconds.
        replaceTimeoutMs: (config.dockerStopGraceSeconds + ROLLOUT_STEP_TIMEOUT_SECONDS) * 1000,
      },
    );
    etcdRollEnded = created.done().catch(() => undefined);
    override?.onCreateEtcd?.(created);
    return created;
  };
  return gatedTurns(key, create, `etcd rolling replacement: the Docker engine is not reached through a unix socket here; changed etcd containers of ${config.clusterName} are replaced without ordering (README, "Rolling changes")`);
}

function groupsOf(topology: Topology): { group: number; members: string[] }[] {
  return topology.groups.map((nodes, group) => ({ group, members: nodes.map((n) => n.name) }));
}

/**
 * The MemberTurns both rolls hand the Docker platform: no gate in a preview; the roll created at the
 * first turn (`create`: undefined when the engine is not on a unix socket, and then every turn is
 * granted at once, with `warning` logged once).
 */
function gatedTurns(key: pulumi.Output<string>, create: () => { turn(member: string, fingerprint: string): Promise<void> } | undefined, warning: string): MemberTurns {
  let roll: { turn(member: string, fingerprint: string): Promise<void> } | undefined;
  let warned = false;
  return {
    key,
    turn(member, fingerprint) {
      if (pulumi.runtime.isDryRun()) return Promise.resolve();
      roll ??= create();
      if (!roll) {
        if (!warned) {
          warned = true;
          pulumi.log.warn(warning);
        }
        return Promise.resolve();
      }
      return roll.turn(member, fingerprint);
    },
  };
}

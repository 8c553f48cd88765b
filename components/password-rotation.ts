// The password rotation during `pulumi up`: a dynamic resource whose state holds the passwords the
// cluster runs with (secret). When the config's passwords change, its update gets the old ones from
// that state and the new ones from the inputs:
// - docker (`inCluster` false): it runs the rotation itself (components/rotation/step.ts, step 1 of
//   rotate.ts): the roles and Citus' pg_dist_authinfo on every node, through the coordinator's
//   read-write endpoint, before any process receives the new values (the Patroni groups, the router
//   and the monitoring depend on it, so their new files are delivered only afterwards);
// - kubernetes (`inCluster` true): the Pulumi process cannot reach the database, so the update only
//   records (`previous`: the old passwords) and the rotation Job runs the same step in the cluster
//   (components/rotation-run.ts), its input the old and the new passwords.
// Its first create changes nothing: a new cluster bootstraps with the passwords it is given. Loaded
// the way components/schema.ts loads its provider (see there): the closure captures file URLs only.
import * as pulumi from "@pulumi/pulumi";
import type { ClusterSecrets } from "./render/types.ts";

const TSX_API_URL = import.meta.resolve("tsx/esm/api");
const STEP_URL = new URL("./rotation/step.ts", import.meta.url).href;

/** How long an update waits for a coordinator leader before the rotation fails. */
export const ROTATION_TIMEOUT_SECONDS = 300;

/** What the dynamic resource stores as its inputs (and outputs). */
export interface PasswordRotationInputs {
  /** Every password of the cluster (a Pulumi secret in the inputs and in the state). */
  passwords: ClusterSecrets;
  /** host:port of the coordinator primary as this machine reaches it (HAProxy's read-write listener). */
  readWriteEndpoint: string;
  /** The Citus database (pg_dist_authinfo lives there). */
  database: string;
  /**
   * host:port of PgBouncer as this machine reaches it, and its databases that pool the application
   * (the transaction and the session pool): step 3 logs in to each with the new application password.
   */
  pgbouncerEndpoint?: string;
  poolerDatabases?: string[];
  /** The cluster CA (PEM): the database step verifies the coordinator with it (sslmode=verify-full). */
  ca?: string;
  timeoutSeconds: number;
  /**
   * true: the rotation runs in the cluster (a Kubernetes Job); the update only records the previous
   * passwords. Absent or false: the update runs it from the Pulumi process.
   */
  inCluster?: boolean;
}

/** Whether the rotation must run: any password, or where it runs, differs. Never a replacement. */
export function rotationDiff(olds: Partial<PasswordRotationInputs>, news: PasswordRotationInputs): { changes: boolean; replaces: string[]; deleteBeforeReplace: false } {
  const changes = JSON.stringify(olds.passwords ?? {}) !== JSON.stringify(news.passwords) || olds.readWriteEndpoint !== news.readWriteEndpoint || olds.database !== news.database;
  return { changes, replaces: [], deleteBeforeReplace: false };
}

// Serialized with the program: every method imports what it needs.
export const passwordRotationProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: PasswordRotationInputs) {
    return { id: `${inputs.database}-password-rotation`, outs: { ...inputs, rotated: [] } };
  },
  async diff(_id: string, olds: PasswordRotationInputs, news: PasswordRotationInputs) {
    return rotationDiff(olds, news);
  },
  async update(_id: string, olds: PasswordRotationInputs, news: PasswordRotationInputs) {
    // Names only (no password): the passwords that differ.
    const changed = ["superuser", "replication", "rewind", "restApi", "app"].filter(
      (name) => (olds.passwords as unknown as Record<string, string>)[name] !== (news.passwords as unknown as Record<string, string>)[name],
    );
    // The previous passwords, for this update's rolling replacement (docker) or rollout Job
    // (kubernetes): members not yet re-created still check them (Patroni's REST API, PgBouncer's
    // admin console); on kubernetes also the rotation Job's `old`.
    if (news.inCluster) return { outs: { ...news, rotated: changed, previous: olds.passwords } };
    const { tsImport } = await import(TSX_API_URL);
    const { runRotationStep } = await tsImport(STEP_URL, STEP_URL);
    const result = await runRotationStep(
      {
        old: olds.passwords,
        next: news.passwords,
        readWriteEndpoint: news.readWriteEndpoint,
        database: news.database,
        ca: news.ca,
        timeoutSeconds: news.timeoutSeconds,
        pgbouncerEndpoint: news.pgbouncerEndpoint,
        poolerDatabases: news.poolerDatabases,
      },
      (line: string) => console.log(line),
    );
    return { outs: { ...news, rotated: result.changed, previous: olds.passwords } };
  },
  // The passwords stay in the database: deleting this resource changes nothing there.
  async delete() {},
};

export class PasswordRotationResource extends pulumi.dynamic.Resource {
  /** Names of the passwords the last update rotated (superuser, replication, rewind, restApi, app). */
  declare readonly rotated: pulumi.Output<string[]>;
  /** The passwords before the last rotation (secret); undefined before any rotation. */
  declare readonly previous: pulumi.Output<ClusterSecrets | undefined>;

  constructor(name: string, inputs: { [K in keyof PasswordRotationInputs]: pulumi.Input<PasswordRotationInputs[K]> }, opts: pulumi.CustomResourceOptions) {
    super(passwordRotationProvider, name, { ...inputs, rotated: undefined, previous: undefined }, opts, "dpc", "PasswordRotation");
  }
}

export interface PasswordRotationArgs {
  /** The cluster's passwords (secret Output). */
  readonly passwords: pulumi.Output<ClusterSecrets>;
  /** host:port of HAProxy's read-write listener as the machine running Pulumi reaches it. */
  readonly readWriteEndpoint: string;
  readonly database: string;
  /**
   * host:port of PgBouncer as the machine running Pulumi reaches it, and its application databases
   * (rotation step 3). Absent (kubernetes' record-only mode): no step 3.
   */
  readonly pgbouncerEndpoint?: string;
  readonly poolerDatabases?: string[];
  /** The cluster CA certificate (PEM, not secret). */
  readonly ca: pulumi.Input<string>;
  /** The rotation runs in the cluster (kubernetes: a Job); the resource only records. */
  readonly inCluster?: boolean;
}

/**
 * Registers the rotation resource (type `pulumi-nodejs:dynamic/dpc:PasswordRotation`). Everything
 * that delivers a password to a process must depend on it.
 */
export function passwordRotation(name: string, args: PasswordRotationArgs, opts: pulumi.CustomResourceOptions): PasswordRotationResource {
  return new PasswordRotationResource(
    name,
    {
      passwords: pulumi.secret(args.passwords),
      readWriteEndpoint: args.readWriteEndpoint,
      database: args.database,
      ...(args.pgbouncerEndpoint ? { pgbouncerEndpoint: args.pgbouncerEndpoint, poolerDatabases: args.poolerDatabases } : {}),
      ca: args.ca,
      timeoutSeconds: ROTATION_TIMEOUT_SECONDS,
      // Only where it is true: a Docker stack's inputs stay as they were (no diff on the next `up`).
      ...(args.inCluster ? { inCluster: true } : {}),
    },
    // The state echoes the inputs: the passwords stay secret among the outputs too.
    { ...opts, additionalSecretOutputs: ["passwords", "previous"] },
  );
}

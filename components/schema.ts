// The application schema: the migrations of sql/, applied through the coordinator's read-write
// endpoint during `pulumi up` (never in preview), once a leader answers. Where the platform runs deploy
// steps in the cluster (kubernetes: a Job, platform.runDeployStep) it does; otherwise a dynamic
// resource does the work in the Pulumi process. Either way the applied version is in the stack outputs.
//
// Dynamic providers are serialized (function text plus captured values) and run in a separate Node
// process, `pulumi-resource-pulumi-nodejs`, which neither gets this program's `--import=tsx` nor
// resolves relative imports. So the provider's closure stays tiny: it captures two absolute file
// URLs and, inside each method, loads tsx's `tsImport` and then the TypeScript module that does the
// work. Capturing imported modules instead (pg, the sql/ code) would make the serializer walk them,
// which fails on ESM and native code (pulumi/pulumi#18977, #8090). The URLs are absolute paths of
// the checkout that ran `pulumi up`: moving the project is fine, as each `pulumi up` serializes
// the provider again.
import { createHash } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import type { ClusterConfig } from "./spec.ts";
import { renderMigrations } from "../sql/migrations.ts";
import { vectorDialect } from "../sql/vector-dialect.ts";
import type { ApplyResult, SchemaStepInputs } from "./schema-apply.ts";
import type { Platform } from "./platform/types.ts";
import { keyedTrigger } from "./step-trigger.ts";

const TSX_API_URL = import.meta.resolve("tsx/esm/api");
const SCHEMA_APPLY_URL = new URL("./schema-apply.ts", import.meta.url).href;

/** How long `pulumi up` waits for a leader before the Schema fails (image builds and basebackups included). */
export const SCHEMA_TIMEOUT_SECONDS = 600;
/**
 * The whole step's budget where it runs as a Job (kubernetes): the wait for a leader, then the wait for
 * every worker group (sql/apply.ts, 120 s), the migrations and the pod's own start.
 */
export const SCHEMA_STEP_DEADLINE_SECONDS = SCHEMA_TIMEOUT_SECONDS + 600;

/** What the dynamic resource stores as its inputs: the step's input. */
type SchemaInputs = SchemaStepInputs;

// The provider is serialized: every method imports what it needs (see the top of this file).
// Exported for the test that runs its serialized form in a plain Node process.
export const schemaProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: SchemaInputs) {
    const { tsImport } = await import(TSX_API_URL);
    const { runSchemaStep } = await tsImport(SCHEMA_APPLY_URL, SCHEMA_APPLY_URL);
    const result = await runSchemaStep(inputs, (message: string) => console.log(message));
    return { id: `${inputs.config.clusterName}-schema`, outs: { ...inputs, ...result } };
  },
  async update(id: string, _olds: SchemaInputs, news: SchemaInputs) {
    const { tsImport } = await import(TSX_API_URL);
    const { runSchemaStep } = await tsImport(SCHEMA_APPLY_URL, SCHEMA_APPLY_URL);
    const result = await runSchemaStep(news, (message: string) => console.log(message));
    return { outs: { ...news, ...result } };
  },
  // Apply again only when the SQL, the database or the endpoint changed; other config changes
  // (pool sizes, ports, images) leave the schema alone. Applying is idempotent either way.
  async diff(_id: string, olds: SchemaInputs, news: SchemaInputs) {
    const changes =
      olds.migrationsFingerprint !== news.migrationsFingerprint ||
      olds.connectionString !== news.connectionString ||
      olds.appPassword !== news.appPassword ||
      olds.monitorPassword !== news.monitorPassword ||
      olds.poolerLookupPassword !== news.poolerLookupPassword ||
      olds.poolerAdminConnectionString !== news.poolerAdminConnectionString ||
      olds.ca !== news.ca ||
      olds.config?.database !== news.config.database;
    return { changes };
  },
  // The schema lives in the database: deleting this resource leaves it there.
  async delete() {},
};

/**
 * What makes the schema step run again, as the dynamic provider's diff decides it: the migrations, the
 * database, the endpoints and the passwords (hex HMAC-SHA256 over them all keyed by `key`, a generated
 * secret: components/step-trigger.ts).
 */
export function schemaTrigger(key: string, inputs: SchemaStepInputs): string {
  const { migrationsFingerprint: fingerprint, connectionString, poolerAdminConnectionString, appPassword, monitorPassword, poolerLookupPassword, ca } = inputs;
  return keyedTrigger(key, [fingerprint, inputs.config.database, connectionString, poolerAdminConnectionString, appPassword, monitorPassword ?? null, poolerLookupPassword ?? null, ca ?? null]);
}

/** Fingerprint of the migrations this config renders: a new or changed migration changes it. */
export function migrationsFingerprint(config: ClusterConfig): string {
  const hash = createHash("sha256");
  const hnswAccessMethod = vectorDialect(config.vectorExtension).accessMethodCandidates[0];
  for (const citus of [false, true]) {
    for (const migration of renderMigrations(config, { citus, hnswAccessMethod })) hash.update(`${migration.id}:${migration.checksum}\n`);
  }
  return hash.digest("hex");
}

/** The dynamic resource that applies the migrations (type `pulumi-nodejs:dynamic/dpc:SchemaMigrations`). */
class SchemaMigrations extends pulumi.dynamic.Resource {
  declare readonly version: pulumi.Output<string>;
  declare readonly applied: pulumi.Output<string[]>;
  declare readonly citus: pulumi.Output<boolean>;
  declare readonly notes: pulumi.Output<string[]>;

  constructor(name: string, inputs: { [K in keyof SchemaInputs]: pulumi.Input<SchemaInputs[K]> }, opts: pulumi.CustomResourceOptions) {
    // Output properties start undefined: the provider's outs fill them in.
    super(schemaProvider, name, { ...inputs, version: undefined, applied: undefined, citus: undefined, notes: undefined }, opts, "dpc", "SchemaMigrations");
  }
}

export interface SchemaArgs {
  /** Validated cluster configuration (database, vector extension, dimensions, HNSW settings). */
  readonly config: ClusterConfig;
  /**
   * postgresql:// URL of a superuser through the coordinator's read-write endpoint (HAProxy, not
   * PgBouncer: the runner holds an advisory lock for its session). Kept secret in the state.
   */
  readonly connectionString: pulumi.Input<string>;
  /**
   * postgresql:// URL of PgBouncer's admin console (database `pgbouncer`) as ROLES.poolerAdmin: after the
   * migrations change anything, RECONNECT replaces the pooled server sessions, which keep the
   * database settings they started with. Kept secret in the state.
   */
  readonly poolerAdminConnectionString: pulumi.Input<string>;
  /** The application role's password (secret): recorded for Citus' connections to the workers. */
  readonly appPassword: pulumi.Input<string>;
  /** The exporters' role's password (secret): set on ROLES.monitor, which migration 010 creates. */
  readonly monitorPassword: pulumi.Input<string>;
  /** PgBouncer's lookup role's password (secret): set on ROLES.poolerLookup, which migration 011 creates. */
  readonly poolerLookupPassword: pulumi.Input<string>;
  /** The cluster CA certificate (PEM, not secret): both connections use sslmode=verify-full with it. */
  readonly ca: pulumi.Input<string>;
  /** Runs the step in the cluster when the Pulumi process cannot reach the endpoints (kubernetes). */
  readonly platform: Platform;
  /**
   * The in-cluster step's trigger key (secret, generated; components/step-trigger.ts). Required where
   * the step runs as a Job (kubernetes); unused by the dynamic resource (docker), which diffs its inputs.
   */
  readonly triggerKey?: pulumi.Input<string>;
}

export class Schema extends pulumi.ComponentResource {
  /** Id of the last migration recorded in the database, e.g. `008_grants`. */
  readonly version: pulumi.Output<string>;
  /** Migrations applied by the last create or update (empty when nothing was pending). */
  readonly applied: pulumi.Output<string[]>;
  /** Whether the citus extension exists: false means the tables are local, not distributed. */
  readonly citus: pulumi.Output<boolean>;
  readonly notes: pulumi.Output<string[]>;

  constructor(name: string, args: SchemaArgs, opts?: pulumi.ComponentResourceOptions) {
    const { config } = args;
    // The connection string stays out of super(): component inputs are saved in the state.
    super("dpc:index:Schema", name, { database: config.database }, opts);

    const inputs = {
      connectionString: pulumi.secret(args.connectionString),
      poolerAdminConnectionString: pulumi.secret(args.poolerAdminConnectionString),
      appPassword: pulumi.secret(args.appPassword),
      monitorPassword: pulumi.secret(args.monitorPassword),
      poolerLookupPassword: pulumi.secret(args.poolerLookupPassword),
      ca: args.ca,
      config,
      migrationsFingerprint: migrationsFingerprint(config),
      timeoutSeconds: SCHEMA_TIMEOUT_SECONDS,
    };
    const stepInputs = pulumi.secret(pulumi.output(inputs) as pulumi.Output<SchemaStepInputs>);
    const inCluster = args.platform.runDeployStep(
      {
        name,
        step: "schema",
        input: stepInputs,
        // Without a key (docker) no platform runs the step as a Job; kubernetes refuses an empty trigger.
        trigger: args.triggerKey === undefined ? "" : pulumi.secret(pulumi.all([stepInputs, args.triggerKey]).apply(([i, key]) => schemaTrigger(key, i))),
        timeoutSeconds: SCHEMA_STEP_DEADLINE_SECONDS,
      },
      // Children do not inherit a component's dependsOn: hand it on.
      { parent: this, dependsOn: opts?.dependsOn },
    );
    if (inCluster) {
      const result = inCluster as pulumi.Output<Record<string, unknown>> as unknown as pulumi.Output<ApplyResult>;
      this.version = result.apply((r) => r.version);
      this.applied = result.apply((r) => r.applied);
      this.citus = result.apply((r) => r.citus);
      this.notes = result.apply((r) => r.notes);
    } else {
      const migrations = new SchemaMigrations(
        `${name}-migrations`,
        inputs,
        // The state echoes the inputs, so the connection string is marked secret among the outputs too.
        { parent: this, dependsOn: opts?.dependsOn, additionalSecretOutputs: ["connectionString", "poolerAdminConnectionString", "appPassword", "monitorPassword", "poolerLookupPassword"] },
      );
      this.version = migrations.version;
      this.applied = migrations.applied;
      this.citus = migrations.citus;
      this.notes = migrations.notes;
    }
    this.registerOutputs({ version: this.version, applied: this.applied, citus: this.citus, notes: this.notes });
  }
}

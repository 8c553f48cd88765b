// The PostgreSQL parameters of a running cluster: a dynamic resource that, during `pulumi up`, makes
// every group's Patroni dynamic configuration carry dynamicParameters(config) and rolls a restart
// through the groups whose members need one (components/rollout/). The containers' files never hold
// these parameters (components/render/patroni.ts), so a parameter change updates this resource
// alone: no container is replaced.
//
// The provider is serialized like the Schema's (see components/schema.ts): its closure captures two
// absolute file URLs and loads the TypeScript module that does the work through tsx at deploy time.
import * as pulumi from "@pulumi/pulumi";
import { PORTS } from "./render/index.ts";
import type { PostgresConfigInputs } from "./rollout/apply.ts";

const TSX_API_URL = import.meta.resolve("tsx/esm/api");
const APPLY_URL = new URL("./rollout/apply.ts", import.meta.url).href;

/** The longest wait for one rollout step (a restart, a switchover), seconds. */
export const ROLLOUT_STEP_TIMEOUT_SECONDS = 300;

// Serialized: every method imports what it needs. Exported for the tests that call it directly.
export const postgresConfigProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: PostgresConfigInputs) {
    const { tsImport } = await import(TSX_API_URL);
    const { applyPostgresConfig } = await tsImport(APPLY_URL, APPLY_URL);
    const outcome = await applyPostgresConfig(inputs);
    return { id: "postgres-config", outs: { ...inputs, outcome } };
  },
  async update(_id: string, _olds: PostgresConfigInputs, news: PostgresConfigInputs) {
    const { tsImport } = await import(TSX_API_URL);
    const { applyPostgresConfig } = await tsImport(APPLY_URL, APPLY_URL);
    const outcome = await applyPostgresConfig(news);
    return { outs: { ...news, outcome } };
  },
  // Apply again when the wanted parameters or the members changed (a new group bootstraps with the
  // sized parameters only). Credentials and timeouts alone change nothing in the database.
  async diff(_id: string, olds: PostgresConfigInputs, news: PostgresConfigInputs) {
    const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
    return { changes: !same(olds.parameters, news.parameters) || !same(olds.groups, news.groups) };
  },
  // The parameters live in the DCS: deleting this resource leaves them there.
  async delete() {},
};

/** The dynamic resource (type `pulumi-nodejs:dynamic/dpc:PostgresConfig`). */
class PostgresConfigResource extends pulumi.dynamic.Resource {
  declare readonly outcome: pulumi.Output<unknown[]>;

  constructor(name: string, inputs: { [K in keyof PostgresConfigInputs]: pulumi.Input<PostgresConfigInputs[K]> }, opts: pulumi.CustomResourceOptions) {
    super(postgresConfigProvider, name, { ...inputs, outcome: undefined }, opts, "dpc", "PostgresConfig");
  }
}

export interface PostgresConfigArgs {
  /**
   * Members per Citus group, with the address the machine running `pulumi up` reaches each at and the
   * name its certificate carries (verified instead of the address).
   */
  readonly groups: { group: number; members: { name: string; address: pulumi.Input<string>; serverName: string }[] }[];
  /** The cluster CA certificate (PEM, not secret): Patroni's REST API, PostgreSQL and PgBouncer are verified with it. */
  readonly ca: pulumi.Input<string>;
  /** dynamicParameters(config). */
  readonly parameters: Record<string, string | number | boolean>;
  /** Patroni REST API "user:password" (secret). */
  readonly restAuth: pulumi.Input<string>;
  /** PgBouncer's admin console as its admin user, ROLES.poolerAdmin (secret). */
  readonly poolerAdminUrl: pulumi.Input<string>;
  /** A superuser URL through HAProxy's read-write listener (secret). */
  readonly readWriteUrl: pulumi.Input<string>;
}

export class PostgresConfig extends pulumi.ComponentResource {
  /** Per group: parameters changed, members restarted, switchovers made by the last create or update. */
  readonly outcome: pulumi.Output<unknown[]>;

  constructor(name: string, args: PostgresConfigArgs, opts?: pulumi.ComponentResourceOptions) {
    // Only plain facts go to super(): component inputs are saved in the state.
    super("dpc:index:PostgresConfig", name, { parameters: args.parameters }, opts);
    const groups = pulumi.output(
      args.groups.map((g) => ({
        group: g.group,
        members: g.members.map((m) => ({ name: m.name, restUrl: pulumi.interpolate`https://${m.address}:${PORTS.patroniRest}`, serverName: m.serverName })),
      })),
    );
    const resource = new PostgresConfigResource(
      `${name}-apply`,
      {
        groups,
        parameters: args.parameters,
        restAuth: pulumi.secret(args.restAuth),
        poolerAdminUrl: pulumi.secret(args.poolerAdminUrl),
        readWriteUrl: pulumi.secret(args.readWriteUrl),
        ca: args.ca,
        stepTimeoutSeconds: ROLLOUT_STEP_TIMEOUT_SECONDS,
      },
      { parent: this, dependsOn: opts?.dependsOn, additionalSecretOutputs: ["restAuth", "poolerAdminUrl", "readWriteUrl"] },
    );
    this.outcome = resource.outcome;
    this.registerOutputs({ outcome: this.outcome });
  }
}

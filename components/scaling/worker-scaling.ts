// Scaling the Citus worker groups during `pulumi up`, with the logic of citus-workers.ts:
// - WorkerRebalance (one per cluster; after every group and the schema): on a raised workerGroups,
//   waits until Patroni has registered the new groups and rebalances shards onto them; on a lowered
//   one, drains the groups that go (their shards moved off). It is updated before Pulumi deletes
//   the going groups (resources gone from the program are deleted after every other step), and a
//   failed drain fails `up` there: nothing is deleted.
// - WorkerMembership (one per worker group): each worker PatroniGroup depends on its own, so
//   Pulumi deletes the group's containers first and then the membership, whose delete removes the
//   group's rows from pg_dist_node (only now: a running Patroni would add them again). It depends on
//   the coordinator group and the router, so it still reaches the coordinator when it goes.
// The providers are serialized like components/schema.ts's: they capture file URLs, import the work.
import * as pulumi from "@pulumi/pulumi";

const TSX_API_URL = import.meta.resolve("tsx/esm/api");
const CITUS_WORKERS_URL = new URL("./citus-workers.ts", import.meta.url).href;
const PG_CLIENT_URL = new URL("../pg-client.ts", import.meta.url).href;

/** How long a rebalance or drain may run before it is cancelled and `up` fails. */
export const REBALANCE_TIMEOUT_SECONDS = 3600;

interface RebalanceInputs {
  /** Superuser on the coordinator primary (HAProxy's read-write listener), in the Citus database. */
  connectionString: string;
  workerGroups: number;
  timeoutSeconds: number;
  /** The cluster CA (PEM): the coordinator is verified with it (sslmode=verify-full). */
  ca?: string;
}

// Exported for the test that checks what the serialized provider captures.
export const workerRebalanceProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: RebalanceInputs) {
    const { tsImport } = await import(TSX_API_URL);
    const { scaleOut } = await tsImport(CITUS_WORKERS_URL, CITUS_WORKERS_URL);
    const { verifyFullUrl } = await tsImport(PG_CLIENT_URL, PG_CLIENT_URL);
    const result = await scaleOut(verifyFullUrl(inputs.connectionString, inputs.ca), inputs.workerGroups, { timeoutMs: inputs.timeoutSeconds * 1000, log: (m: string) => console.log(m) });
    return { id: `worker-rebalance`, outs: { ...inputs, moves: result.job.moves, shards: result.after } };
  },
  async update(_id: string, olds: RebalanceInputs, news: RebalanceInputs) {
    const { tsImport } = await import(TSX_API_URL);
    const { scaleOut, drainWorkerGroups } = await tsImport(CITUS_WORKERS_URL, CITUS_WORKERS_URL);
    const { verifyFullUrl } = await tsImport(PG_CLIENT_URL, PG_CLIENT_URL);
    const url = verifyFullUrl(news.connectionString, news.ca);
    const options = { timeoutMs: news.timeoutSeconds * 1000, log: (m: string) => console.log(m) };
    if (news.workerGroups < olds.workerGroups) {
      const result = await drainWorkerGroups(url, news.workerGroups, options);
      return { outs: { ...news, moves: (result.job?.moves ?? 0) + (result.rebalance?.moves ?? 0), shards: result.after } };
    }
    const result = await scaleOut(url, news.workerGroups, options);
    return { outs: { ...news, moves: result.job.moves, shards: result.after } };
  },
  async diff(_id: string, olds: RebalanceInputs, news: RebalanceInputs) {
    return { changes: olds.workerGroups !== news.workerGroups || olds.connectionString !== news.connectionString };
  },
  // The shards stay where they are.
  async delete() {},
};

interface MembershipInputs {
  connectionString: string;
  /** The Citus group number (1..N). */
  group: number;
  /** The cluster CA (PEM): the coordinator is verified with it (sslmode=verify-full). */
  ca?: string;
}

export const workerMembershipProvider: pulumi.dynamic.ResourceProvider = {
  // Patroni registers the group's primary itself once it runs.
  async create(inputs: MembershipInputs) {
    return { id: `worker-group-${inputs.group}`, outs: inputs };
  },
  async diff(_id: string, olds: MembershipInputs, news: MembershipInputs) {
    // A new CA is stored too: the delete, which runs on the stored state, must verify the coordinator.
    return { changes: olds.connectionString !== news.connectionString || olds.ca !== news.ca, replaces: olds.group !== news.group ? ["group"] : [] };
  },
  async update(_id: string, _olds: MembershipInputs, news: MembershipInputs) {
    return { outs: news };
  },
  // After the group's containers are gone: its rows in pg_dist_node (refused while it holds shards).
  async delete(_id: string, props: MembershipInputs) {
    const { tsImport } = await import(TSX_API_URL);
    const { removeWorkerGroups } = await tsImport(CITUS_WORKERS_URL, CITUS_WORKERS_URL);
    const { verifyFullUrl } = await tsImport(PG_CLIENT_URL, PG_CLIENT_URL);
    await removeWorkerGroups(verifyFullUrl(props.connectionString, props.ca), props.group - 1, { log: (m: string) => console.log(m) });
  },
};

/** Type `pulumi-nodejs:dynamic/dpc:WorkerRebalance`. */
export class WorkerRebalance extends pulumi.dynamic.Resource {
  declare readonly moves: pulumi.Output<number>;
  constructor(name: string, inputs: { connectionString: pulumi.Input<string>; workerGroups: number; ca: pulumi.Input<string> }, opts: pulumi.CustomResourceOptions) {
    super(
      workerRebalanceProvider,
      name,
      { connectionString: pulumi.secret(inputs.connectionString), workerGroups: inputs.workerGroups, ca: inputs.ca, timeoutSeconds: REBALANCE_TIMEOUT_SECONDS, moves: undefined, shards: undefined },
      { ...opts, additionalSecretOutputs: ["connectionString"] },
      "dpc",
      "WorkerRebalance",
    );
  }
}

/** Type `pulumi-nodejs:dynamic/dpc:WorkerMembership`. */
export class WorkerMembership extends pulumi.dynamic.Resource {
  constructor(name: string, inputs: { connectionString: pulumi.Input<string>; group: number; ca: pulumi.Input<string> }, opts: pulumi.CustomResourceOptions) {
    super(
      workerMembershipProvider,
      name,
      { connectionString: pulumi.secret(inputs.connectionString), group: inputs.group, ca: inputs.ca },
      { ...opts, additionalSecretOutputs: ["connectionString"] },
      "dpc",
      "WorkerMembership",
    );
  }
}

// `npm run local -- up` on a running cluster: the stack file may have changed, so instead of refusing,
// apply what changed, step by step, without stopping the cluster. Each step is one kind of change;
// CHANGE_STEPS is the list `up` runs, in order (the extension point: a password rotation, a
// scale-out add their own step here).
import { groupName } from "../components/spec.ts";
import { PORTS } from "../components/render/index.ts";
import { dynamicParameters } from "../components/render/patroni.ts";
import { applyParameters, type RolloutOptions, type RolloutReport, type RolloutTarget } from "../components/rollout/orchestrate.ts";
import { patroniHttpTarget } from "../components/rollout/patroni-http.ts";
import type { LocalCluster } from "./cluster.ts";

/** The read-write backend in haproxy.cfg (components/render/haproxy.ts). */
export const READ_WRITE_BACKEND = "coordinator_primary";

/** The rollout target of the local cluster: its members' REST APIs, PgBouncer, HAProxy's stats. */
export function localRolloutTarget(cluster: LocalCluster): RolloutTarget {
  return patroniHttpTarget({
    groups: cluster.topology.groups.map((nodes, group) => ({ group, members: nodes.map((n) => ({ name: n.name, restUrl: cluster.restUrl(n) })) })),
    restAuth: cluster.restApiAuth(),
    poolerAdminUrl: cluster.pgbouncerUrl("admin", "pgbouncer"),
    haproxyStats: { url: `http://${cluster.addressing.haproxy.connect}:${PORTS.haproxyStats}/;csv`, backend: READ_WRITE_BACKEND },
    memberSqlUrls: Object.fromEntries(cluster.nodes.map((n) => [n.name, cluster.nodeUrl(n)])),
  });
}

/** What one step did, for the log and the tests. */
export interface ChangeResult {
  step: string;
  /** One line per thing done; empty when nothing had changed. */
  notes: string[];
  /** The step's own report (e.g. the rollout's), when it has one. */
  detail?: unknown;
}

/** One kind of change `up` applies to a running cluster. */
export interface ChangeStep {
  name: string;
  apply(cluster: LocalCluster, options: RolloutOptions): Promise<ChangeResult>;
}

/** PostgreSQL parameters: Patroni's dynamic configuration, with a rolling restart where needed. */
export const postgresParametersStep: ChangeStep = {
  name: "postgres-parameters",
  async apply(cluster, options) {
    const report: RolloutReport = await applyParameters(localRolloutTarget(cluster), dynamicParameters(cluster.config), options);
    const notes = report.groups
      .filter((g) => g.changed.length > 0 || g.restarted.length > 0 || g.switchovers.length > 0)
      .map(
        (g) =>
          `${groupName(cluster.topology.scope, g.group)}: ${g.changed.length > 0 ? `set ${g.changed.join(", ")}` : "parameters unchanged"}` +
          (g.restarted.length > 0 ? `; restarted ${g.restarted.join(", ")}` : "") +
          g.switchovers.map((s) => `; switchover ${s.from} -> ${s.to} (${s.seconds.toFixed(2)} s${s.paused ? ", PgBouncer paused" : ""})`).join(""),
      );
    return { step: this.name, notes, detail: report };
  },
};

/** The steps `up` runs on a running cluster, in order. */
export const CHANGE_STEPS: ChangeStep[] = [postgresParametersStep];

/** Runs `steps` against the running cluster, logging each note. Throws on the first step that fails. */
export async function applyChanges(cluster: LocalCluster, log: (line: string) => void, steps: ChangeStep[] = CHANGE_STEPS, options: RolloutOptions = {}): Promise<ChangeResult[]> {
  const results: ChangeResult[] = [];
  for (const step of steps) {
    const result = await step.apply(cluster, { ...options, log: options.log ?? log });
    result.notes.forEach((note) => log(`${step.name}: ${note}`));
    if (result.notes.length === 0) log(`${step.name}: nothing to change`);
    results.push(result);
  }
  return results;
}

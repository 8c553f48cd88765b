// What the PostgresConfig dynamic resource runs during `pulumi up` (components/postgres-config.ts):
// the rolling change of PostgreSQL parameters over Patroni's REST API. No Pulumi import: the dynamic
// provider loads this file in its own process (through tsx), and the real-service test calls it.
import { applyParameters, type RolloutReport } from "./orchestrate.ts";
import type { Parameters } from "./parameters.ts";
import { patroniHttpTarget, type PatroniHttpSpec } from "./patroni-http.ts";

/** The inputs of the PostgresConfig resource, as its provider receives them. */
export interface PostgresConfigInputs {
  /** Every Citus group with its members' Patroni REST URLs. */
  groups: PatroniHttpSpec["groups"];
  /** "user:password" of Patroni's REST API (secret). */
  restAuth: string;
  /** PgBouncer's admin console as its admin user, ROLES.poolerAdmin (secret): paused around the coordinator's switchover. */
  poolerAdminUrl: string;
  /** A superuser URL through HAProxy's read-write listener (secret): when the new leader is routed. */
  readWriteUrl: string;
  /** The parameters every node must run with (dynamicParameters of the config). */
  parameters: Parameters;
  /** The cluster CA (PEM): Patroni's REST API, PostgreSQL and PgBouncer speak TLS verified against it. */
  ca?: string;
  /** The longest wait for one step (restart, switchover, a group becoming healthy), s. */
  stepTimeoutSeconds: number;
}

/** A summary line per group, safe for the state and the logs (no URL, no password). */
export interface PostgresConfigGroupOutcome {
  group: number;
  changed: string[];
  restarted: string[];
  switchovers: string[];
}

/** Applies `inputs.parameters` to every group, rolling restarts where Patroni asks for one. */
export async function applyPostgresConfig(inputs: PostgresConfigInputs, log: (line: string) => void = console.log): Promise<PostgresConfigGroupOutcome[]> {
  const target = patroniHttpTarget({
    groups: inputs.groups,
    restAuth: inputs.restAuth,
    poolerAdminUrl: inputs.poolerAdminUrl,
    readWriteUrl: inputs.readWriteUrl,
    ca: inputs.ca,
  });
  const report: RolloutReport = await applyParameters(target, inputs.parameters, { stepTimeoutMs: inputs.stepTimeoutSeconds * 1000, log });
  return report.groups.map((g) => ({
    group: g.group,
    changed: g.changed,
    restarted: g.restarted,
    switchovers: g.switchovers.map((s) => `${s.from} -> ${s.to} (${s.seconds.toFixed(2)} s${s.paused ? ", PgBouncer paused" : ""})`),
  }));
}

// Step one of a rotation: the roles' passwords and Citus' pg_dist_authinfo on every node, through
// one superuser session on the coordinator primary. No Pulumi import (the dynamic provider loads it).
import pg from "pg";
import { conninfoValue, recordCitusAuthinfo } from "../../sql/apply.ts";
import { scramSha256Verifier } from "./scram.ts";
import type { RoleChange } from "./plan.ts";

export interface DatabaseRotationResult {
  /** Roles altered, on the coordinator and (under Citus) on every worker primary. */
  roles: string[];
  /** Worker primaries (host:port) that ran the same change; empty without Citus. */
  workers: string[];
}

/** `ALTER ROLE` with a SCRAM verifier (never the plain password), and the pg_dist_authinfo row where Citus keeps it. */
function roleStatements(client: pg.ClientBase, change: RoleChange & { verifier: string }, citus: boolean): string[] {
  const statements = [`ALTER ROLE ${client.escapeIdentifier(change.role)} PASSWORD ${client.escapeLiteral(change.verifier)}`];
  if (citus && change.citusAuthinfo) {
    // nodeid 0: for connections to every node, as Patroni and sql/apply.ts record it.
    statements.push(
      `INSERT INTO pg_catalog.pg_dist_authinfo (nodeid, rolename, authinfo) VALUES (0, ${client.escapeLiteral(change.role)}, ${client.escapeLiteral(`password=${conninfoValue(change.password)}`)}) ` +
        "ON CONFLICT (nodeid, rolename) DO UPDATE SET authinfo = EXCLUDED.authinfo",
    );
  }
  return statements;
}

/**
 * Sets each role's new password on every node of the cluster, through `client`: a superuser session
 * on the coordinator primary, in the Citus database. The old passwords keep working for sessions
 * already open (PostgreSQL checks a password at login only).
 *
 * Under Citus the roles of Patroni (replication, rewind) exist on each group separately and are not
 * Citus-distributed objects, so `ALTER ROLE` propagation would skip them: every worker primary runs
 * the same statements itself, through `run_command_on_workers` (propagation turned off there, so it
 * does not echo them back), each worker in one implicit transaction with its pg_dist_authinfo row.
 * Workers first, over connections that log in with the coordinator's current pg_dist_authinfo (the
 * old superuser password, still valid on the workers until that command commits); then the
 * coordinator's own role and pg_dist_authinfo, in one transaction. Standbys follow by streaming.
 * Idempotent: a second run with the same passwords changes nothing a client sees.
 *
 * The workers' pg_dist_authinfo rows travel inside the command text Citus sends them (a function
 * argument here, so not in the coordinator's statement log); they hold the plain password in the
 * catalog anyway, as Patroni's own row does.
 *
 * Throws naming the workers that failed (their error text, never a password); the coordinator is
 * then left unchanged, and running the rotation again completes it.
 */
export async function rotateDatabasePasswords(client: pg.ClientBase, changes: RoleChange[]): Promise<DatabaseRotationResult> {
  if (changes.length === 0) return { roles: [], workers: [] };
  // One verifier (one salt) per role, the same on every node.
  const roles = changes.map((change) => ({ ...change, verifier: scramSha256Verifier(change.password) }));
  const citus = (await client.query("SELECT 1 FROM pg_extension WHERE extname = 'citus'")).rowCount === 1;
  let workers: string[] = [];
  if (citus) {
    const command = ["SET citus.enable_alter_role_propagation TO off", ...roles.flatMap((r) => roleStatements(client, r, true))].join("; ");
    const result = await client.query<{ nodename: string; nodeport: number; success: boolean; result: string }>(
      "SELECT nodename, nodeport, success, result FROM run_command_on_workers($1)",
      [command],
    );
    const failed = result.rows.filter((row) => !row.success);
    if (failed.length > 0) {
      throw new Error(`password rotation failed on worker(s) ${failed.map((row) => `${row.nodename}:${row.nodeport} (${row.result})`).join(", ")}; the coordinator was left unchanged: run the rotation again`);
    }
    workers = result.rows.map((row) => `${row.nodename}:${row.nodeport}`);
  }
  await client.query("BEGIN");
  try {
    if (citus) await client.query("SET LOCAL citus.enable_alter_role_propagation TO off");
    for (const change of roles) {
      await client.query(roleStatements(client, change, false)[0]);
      // Here the password travels as a bind parameter, in no statement text.
      if (citus && change.citusAuthinfo) await recordCitusAuthinfo(client, change.role, change.password);
    }
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  }
  return { roles: roles.map((r) => r.role), workers };
}

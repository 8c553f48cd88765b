// A password rotation, in the one order that never hands anyone a password the database rejects:
//  1. the roles (ALTER ROLE) and Citus' pg_dist_authinfo on every node (sessions already open keep
//     working: PostgreSQL checks a password at login only);
//  2. Patroni's own credentials (its config rewritten, then reloaded: superuser, replication, rewind,
//     REST API);
//  3. one login through PgBouncer with the new application password, to each of its databases:
//     PgBouncer checks it against the verifier of step 1 (auth_query: nothing of PgBouncer's changes,
//     nothing is reloaded) and keeps that login's SCRAM keys for the pool's next server logins;
//  4. whatever records the passwords for people and tools (stack outputs, the local secrets file).
// The local runner and the Pulumi resource run this same function with their own steps 2-4. No
// Pulumi import: the dynamic provider loads this file in its own process.
import { ROLES, type ClusterSecrets } from "../render/types.ts";
import { briefError, isRetryableError } from "../schema-apply.ts";
import { rotateDatabasePasswords } from "./database.ts";
import { planRotation, validatePasswords, type PasswordName, type RotationPlan } from "./plan.ts";
import { quietClient } from "../pg-client.ts";

/** The platform's part: where the files live and how the processes reload them. */
export interface RotationSteps {
  /**
   * postgresql:// URL of a superuser session on the coordinator primary in the Citus database,
   * logging in with `superuserPassword` (first the old one; the new one if a previous, interrupted
   * rotation already changed it).
   */
  coordinatorUrl(superuserPassword: string): string;
  /** Step 2: rewrite Patroni's configuration with `next` on every node and reload it. */
  patroni?(next: ClusterSecrets, old: ClusterSecrets): Promise<void>;
  /**
   * Step 3: log in through PgBouncer as the application with `next.app`, to every PgBouncer database
   * that pools it (components/rotation/pooler-login.ts refreshPoolerLogins).
   */
  pgbouncer?(next: ClusterSecrets, old: ClusterSecrets): Promise<void>;
  /** Step 4: record `next` (outputs, secrets file, monitoring's credentials). */
  record?(next: ClusterSecrets): Promise<void>;
}

export interface RotationOptions {
  /** How long to retry step 1 while no coordinator leader answers (ms; default 120 s). */
  timeoutMs?: number;
  /** Pause between attempts (ms; default 2 s). */
  intervalMs?: number;
  /** Progress lines: role names and step names only, never a password. */
  log?: (line: string) => void;
  /** Step 1, injected by the tests (default: rotateDatabasePasswords over a pg client). */
  database?: (url: string, plan: RotationPlan) => Promise<{ workers: string[] }>;
  sleep?: (ms: number) => Promise<void>;
}

export interface RotationResult {
  /** Passwords changed, by name (superuser, replication, rewind, restApi, app). */
  changed: PasswordName[];
  /** Database roles altered. */
  roles: string[];
  /** Worker primaries that ran the change (host:port). */
  workers: string[];
  /** The steps run, in order: database, patroni, pgbouncer, record. */
  steps: string[];
  /** Seconds each step took, by step name. */
  seconds: Record<string, number>;
}

async function databaseStep(url: string, plan: RotationPlan): Promise<{ workers: string[] }> {
  const client = quietClient({ connectionString: url, connectionTimeoutMillis: 5000 });
  client.on("error", () => undefined);
  await client.connect();
  try {
    return await rotateDatabasePasswords(client, plan.roles);
  } finally {
    await client.end().catch(() => undefined);
  }
}

const INVALID_PASSWORD = "28P01";

/**
 * Rotates every password that differs between `old` and `next` (validated first: see
 * plan.validatePasswords), running only the steps the change needs. Step 1 is retried while the
 * coordinator has no leader, up to `timeoutMs`; a login refused with the old superuser password is
 * retried once with the new one (an interrupted rotation that got that far). Any other failure
 * throws before the next step: nothing later ever gets a password the database does not have yet.
 * Running it again with the same `old` and `next` completes an interrupted rotation.
 */
export async function rotatePasswords(old: ClusterSecrets, next: ClusterSecrets, steps: RotationSteps, options: RotationOptions = {}): Promise<RotationResult> {
  validatePasswords(next);
  const plan = planRotation(old, next);
  const log = options.log ?? (() => undefined);
  const result: RotationResult = { changed: plan.changed, roles: plan.roles.map((r) => r.role), workers: [], steps: [], seconds: {} };
  if (plan.changed.length === 0) return result;
  const timed = async (name: string, run: () => Promise<void>) => {
    const started = Date.now();
    await run();
    result.steps.push(name);
    result.seconds[name] = (Date.now() - started) / 1000;
    log(`rotation: ${name} done in ${result.seconds[name].toFixed(2)} s`);
  };
  log(`rotation: ${plan.changed.join(", ")}`);

  if (plan.roles.length > 0) {
    await timed("database", async () => {
      result.workers = (await withRetry(old, next, steps, plan, options)).workers;
    });
  }
  if (plan.patroni && steps.patroni) await timed("patroni", () => steps.patroni!(next, old));
  if (plan.pgbouncer && steps.pgbouncer) await timed("pgbouncer", () => steps.pgbouncer!(next, old));
  if (steps.record) await timed("record", () => steps.record!(next));
  return result;
}

async function withRetry(old: ClusterSecrets, next: ClusterSecrets, steps: RotationSteps, plan: RotationPlan, options: RotationOptions): Promise<{ workers: string[] }> {
  const database = options.database ?? databaseStep;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const interval = options.intervalMs ?? 2000;
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  let superuserPassword = old.superuser;
  for (let attempt = 1; ; attempt++) {
    try {
      return await database(steps.coordinatorUrl(superuserPassword), plan);
    } catch (error) {
      const refused = (error as { code?: unknown }).code === INVALID_PASSWORD;
      if (refused && superuserPassword !== next.superuser) {
        options.log?.(`rotation: the old ${ROLES.superuser} password is refused; trying the new one (a previous rotation got that far)`);
        superuserPassword = next.superuser;
        continue;
      }
      if (!isRetryableError(error) || Date.now() + interval > deadline) {
        throw new Error(`rotation: the database step failed (attempt ${attempt}): ${briefError(error)}`, { cause: error });
      }
      options.log?.(`rotation: waiting for the coordinator (attempt ${attempt}: ${briefError(error)})`);
      await sleep(interval);
    }
  }
}

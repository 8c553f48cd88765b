// The rotation of changed passwords as a step: step 1 of rotate.ts (the roles and Citus'
// pg_dist_authinfo on every node, through the coordinator's read-write endpoint, logging in with the
// old superuser password, or the new one when an interrupted run got that far) and, where PgBouncer is
// reachable from the step, step 3 (a login per pool with the new application password; on Kubernetes at
// each PgBouncer pod, found through a headless Service). Run by the Docker
// platform's PasswordRotation resource from the Pulumi process, and by the Kubernetes rotation Job's
// pod (components/in-cluster-step.ts), before anything receives the new values: the processes get
// them afterwards from their new files (Docker: containers re-created; Kubernetes: Secrets updated,
// the Patroni pods replaced by the rollout Job, where Patroni starts
// with its new REST and replication credentials). No Pulumi import.
import { lookup } from "node:dns/promises";
import type { ClusterSecrets } from "../render/types.ts";
import { ROLES } from "../render/types.ts";
import { verifyFullUrl } from "../pg-client.ts";
import { refreshPoolerLogins } from "./pooler-login.ts";
import { rotatePasswords, type RotationOptions, type RotationResult } from "./rotate.ts";

/** The step's input (the rotation Job's Secret's input.json; the PasswordRotation resource's inputs). */
export interface RotationStepInputs {
  /** The passwords the cluster runs with (the previous deployment's). */
  old: ClusterSecrets;
  /** The passwords wanted. Equal to `old`: nothing to do, nothing dialled. */
  next: ClusterSecrets;
  /** host:port of HAProxy's read-write listener (the coordinator leader) as the step reaches it. */
  readWriteEndpoint: string;
  /** The Citus database (pg_dist_authinfo lives there). */
  database: string;
  /** The cluster CA (PEM): the coordinator is verified with it (verify-full). */
  ca?: string;
  /** How long to wait for a coordinator leader, s. */
  timeoutSeconds: number;
  /**
   * host:port of PgBouncer as the step reaches it, and its databases pooling the application: step 3
   * (one login per pool with the new application password, pooler-login.ts). Absent: no step 3.
   */
  pgbouncerEndpoint?: string;
  poolerDatabases?: string[];
  /**
   * Kubernetes: a name whose DNS answer is every ready PgBouncer pod's address (the router's headless
   * `<pgbouncer>-pods` Service). Given, step 3 logs in at each pod's address (verified against
   * pgbouncerEndpoint's host, the name the router's certificate carries): each pod keeps its own
   * pools, and through the Service the logins could all reach one pod. Absent: at pgbouncerEndpoint.
   */
  pgbouncerPods?: string;
}

/** What the step reaches beyond its inputs (the tests' fakes). */
export interface RotationStepDeps {
  /** Every address `host` resolves to (default: the system resolver, all A/AAAA records). */
  resolve?: (host: string) => Promise<string[]>;
  /** Step 3 at one PgBouncer (default: pooler-login.ts refreshPoolerLogins). */
  login?: typeof refreshPoolerLogins;
  /** Step 1 (default: rotate.ts over a pg client). */
  database?: RotationOptions["database"];
}

/** The superuser's URL on the coordinator leader with `password`, verified against `ca`. */
export function rotationCoordinatorUrl(inputs: Pick<RotationStepInputs, "readWriteEndpoint" | "database" | "ca">, password: string): string {
  return verifyFullUrl(`postgresql://${ROLES.superuser}:${encodeURIComponent(password)}@${inputs.readWriteEndpoint}/${inputs.database}`, inputs.ca);
}

/**
 * Rotates what differs between `old` and `next` in the database (rotate.ts step 1) and, given PgBouncer's
 * endpoint, logs in once per pool with the new application password (step 3); the result names roles,
 * never a password.
 */
export async function runRotationStep(inputs: RotationStepInputs, log: (line: string) => void = () => undefined, deps: RotationStepDeps = {}): Promise<RotationResult> {
  const { pgbouncerEndpoint, poolerDatabases = [inputs.database] } = inputs;
  const login = deps.login ?? refreshPoolerLogins;
  const resolve = deps.resolve ?? (async (host: string) => (await lookup(host, { all: true })).map((a) => a.address));
  const urlsAt = (endpoint: string, next: ClusterSecrets) => poolerDatabases.map((db) => `postgresql://${ROLES.app}:${encodeURIComponent(next.app)}@${endpoint}/${db}`);
  const pgbouncer = async (next: ClusterSecrets) => {
    if (!inputs.pgbouncerPods) return login(urlsAt(pgbouncerEndpoint!, next), { ca: inputs.ca });
    const { hostname: serverName, port } = new URL(`postgresql://${pgbouncerEndpoint}`);
    const pods = await resolve(inputs.pgbouncerPods);
    if (pods.length === 0) throw new Error(`rotation: no ready PgBouncer pod behind ${inputs.pgbouncerPods}`);
    for (const ip of pods) await login(urlsAt(`${ip.includes(":") ? `[${ip}]` : ip}:${port}`, next), { ca: inputs.ca, serverName });
    log(`rotation: one login per pool at each of ${pods.length} PgBouncer pods`);
  };
  return rotatePasswords(inputs.old, inputs.next, { coordinatorUrl: (password) => rotationCoordinatorUrl(inputs, password), ...(pgbouncerEndpoint ? { pgbouncer } : {}) }, { timeoutMs: inputs.timeoutSeconds * 1000, log, ...(deps.database ? { database: deps.database } : {}) });
}

// What a password change touches: pure functions over the old and new passwords, shared by the
// Pulumi resource and the local runner (components/rotation/rotate.ts runs the steps).
import { ROLES, type ClusterSecrets } from "../render/types.ts";

export type PasswordName = keyof ClusterSecrets;

/** Every password of the cluster, in the order the steps handle them. */
export const PASSWORD_NAMES: readonly PasswordName[] = ["superuser", "replication", "rewind", "restApi", "app"];

/** Passwords that are database roles' (restApi is Patroni's own REST API user, not a role). */
export const DATABASE_PASSWORDS: readonly PasswordName[] = ["superuser", "replication", "rewind", "app"];

/**
 * Roles whose password Citus needs for its own connections between nodes, in pg_dist_authinfo:
 * the superuser (Patroni records it at bootstrap) and the application role (sql/apply.ts records it).
 */
export const CITUS_AUTHINFO_PASSWORDS: readonly PasswordName[] = ["superuser", "app"];

/** Passwords in Patroni's configuration (postgresql.authentication and restapi.authentication). */
export const PATRONI_PASSWORDS: readonly PasswordName[] = ["superuser", "replication", "rewind", "restApi"];

/**
 * Passwords whose clients log in through PgBouncer: PgBouncer checks them against the verifier in
 * the database (auth_query), never a file of its own; none of the passwords is in its auth file.
 */
export const POOLER_LOGIN_PASSWORDS: readonly PasswordName[] = ["app"];

/** Shortest and longest password accepted (PgBouncer's auth file takes up to 2048 bytes). */
export const PASSWORD_LENGTH = { min: 8, max: 1024 } as const;

/** A database role's new password. */
export interface RoleChange {
  name: PasswordName;
  role: string;
  password: string;
  /** Whether Citus keeps it in pg_dist_authinfo for connections between nodes. */
  citusAuthinfo: boolean;
}

export interface RotationPlan {
  /** Passwords that differ, in PASSWORD_NAMES order. */
  changed: PasswordName[];
  /** Roles to ALTER, with pg_dist_authinfo where Citus keeps it. */
  roles: RoleChange[];
  /** Whether Patroni's configuration must be rewritten and reloaded on every node. */
  patroni: boolean;
  /**
   * Whether to log in once through PgBouncer with the new application password (rotate.ts step 3):
   * no file of PgBouncer's changes, and it is not reloaded.
   */
  pgbouncer: boolean;
}

/**
 * Problems with one password, for a message that names the field but never shows the value:
 * printable ASCII (0x20-0x7e) only, so the client-side SCRAM verifier equals the server's (no
 * SASLprep mapping applies) and every file format that carries it (YAML, PgBouncer's auth file,
 * libpq conninfo, pgpass) can quote it; between PASSWORD_LENGTH.min and .max characters.
 */
export function passwordProblems(field: string, value: unknown): string[] {
  if (typeof value !== "string") return [`${field}: must be a string, got ${value === null ? "null" : typeof value}`];
  const problems: string[] = [];
  if (value.length < PASSWORD_LENGTH.min || value.length > PASSWORD_LENGTH.max) {
    problems.push(`${field}: must have ${PASSWORD_LENGTH.min} to ${PASSWORD_LENGTH.max} characters, has ${value.length}`);
  }
  const bad = [...value].findIndex((c) => c < " " || c > "~");
  if (bad >= 0) problems.push(`${field}: only printable ASCII characters (space to ~) are allowed; character ${bad + 1} is not`);
  return problems;
}

/** Throws one error listing every invalid password of `secrets` (named by `fieldOf`, e.g. the config key). */
export function validatePasswords(secrets: Partial<Record<PasswordName, unknown>>, fieldOf: (name: PasswordName) => string = (n) => n): void {
  const problems = PASSWORD_NAMES.filter((name) => name in secrets).flatMap((name) => passwordProblems(fieldOf(name), secrets[name]));
  if (problems.length > 0) throw new Error(`invalid password(s):\n  - ${problems.join("\n  - ")}`);
}

/** What changes from `old` to `next`; nothing when they are equal. */
export function planRotation(old: ClusterSecrets, next: ClusterSecrets): RotationPlan {
  const changed = PASSWORD_NAMES.filter((name) => old[name] !== next[name]);
  const roles = changed
    .filter((name) => DATABASE_PASSWORDS.includes(name))
    .map((name) => ({ name, role: ROLES[name], password: next[name], citusAuthinfo: CITUS_AUTHINFO_PASSWORDS.includes(name) }));
  return {
    changed,
    roles,
    patroni: changed.some((name) => PATRONI_PASSWORDS.includes(name)),
    pgbouncer: changed.some((name) => POOLER_LOGIN_PASSWORDS.includes(name)),
  };
}

// Password rotation on the running local cluster: components/rotation/rotate.ts with the local
// runner's steps (rendered files rewritten in the state directory, Patroni reloaded through its REST
// API; PgBouncer's files never change: one login through it with the new application password). `npm run local -- rotate-password ROLE...` starts one;
// the new passwords are recorded as pending first, so an interrupted rotation is completed by the
// next `rotate-password` or `up`.
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PORTS, ROLES, type ClusterSecrets } from "../components/render/index.ts";
import { PASSWORD_NAMES, type PasswordName } from "../components/rotation/plan.ts";
import { rotatePasswords, type RotationResult } from "../components/rotation/rotate.ts";
import { request } from "../components/https.ts";
import { refreshPoolerLogins } from "../components/rotation/pooler-login.ts";
import { sessionPoolDatabase } from "../components/render/pgbouncer.ts";
import { LocalClusterError, type LocalCluster } from "./cluster.ts";
import { writeMonitoringFiles } from "./monitoring.ts";
import { pollUntil, sleep } from "./processes.ts";

/** A new generated password: 32 characters of base64url (192 random bits), as `up` generates them. */
export function generatePassword(): string {
  return randomBytes(24).toString("base64url");
}

/** The pending rotation's target passwords (mode 0600), beside secrets.json in the state directory. */
export function pendingSecretsPath(stateDir: string): string {
  return join(stateDir, "secrets.pending.json");
}

export function pendingSecretsFile(cluster: LocalCluster): string {
  return pendingSecretsPath(cluster.paths.stateDir);
}

export function pendingRotation(cluster: LocalCluster): ClusterSecrets | undefined {
  const file = pendingSecretsFile(cluster);
  return existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as ClusterSecrets) : undefined;
}

/** Parses the names `rotate-password` takes ("all" for every one); throws naming the allowed ones. */
export function parsePasswordNames(args: string[]): PasswordName[] {
  if (args.length === 0) throw new LocalClusterError(`rotate-password needs one or more of: ${PASSWORD_NAMES.join(", ")}, or all`);
  if (args.includes("all")) return [...PASSWORD_NAMES];
  const unknown = args.filter((a) => !PASSWORD_NAMES.includes(a as PasswordName));
  if (unknown.length > 0) throw new LocalClusterError(`rotate-password: unknown password ${unknown.join(", ")}; allowed: ${PASSWORD_NAMES.join(", ")}, all`);
  return [...new Set(args as PasswordName[])];
}

async function patroniReload(restUrl: string, auth: string): Promise<number> {
  const answer = await request(`${restUrl}/reload`, {
    method: "POST",
    headers: { authorization: `Basic ${Buffer.from(auth).toString("base64")}` },
    timeoutMs: 5000,
  });
  return answer.status;
}

/**
 * Rotates `names` on the running cluster to new generated passwords (or `given`, for one name), or
 * completes a pending rotation when `names` is empty. Order and guarantees: rotatePasswords. On
 * success the new passwords are in secrets.json, the pgpass file and the monitoring's files.
 */
export async function rotateLocalPasswords(
  cluster: LocalCluster,
  names: PasswordName[],
  options: { given?: Partial<ClusterSecrets>; log?: (line: string) => void } = {},
): Promise<RotationResult> {
  if (!(await cluster.leader(0))) {
    throw new LocalClusterError(`the local cluster's coordinator has no leader (is it running? state: ${cluster.paths.stateDir}): start it with \`npm run local -- up\` first`);
  }
  const old = cluster.secrets();
  const pending = pendingRotation(cluster);
  const next: ClusterSecrets = { ...(pending ?? old) };
  for (const name of names) next[name] = options.given?.[name] ?? generatePassword();
  // Recorded before anything changes: an interruption leaves the target known for the next run.
  writeFileSync(pendingSecretsFile(cluster), JSON.stringify(next, null, 2), { mode: 0o600 });
  const log = options.log ?? (() => undefined);
  const result = await rotatePasswords(old, next, {
    coordinatorUrl: (password) =>
      `postgresql://${ROLES.superuser}:${encodeURIComponent(password)}@${cluster.addressing.haproxy.connect}:${PORTS.haproxyReadWrite}/${cluster.config.database}?${cluster.sslQuery()}`,
    patroni: async (newSecrets, oldSecrets) => {
      cluster.setSecrets(newSecrets, false);
      for (const node of cluster.render().postgres) node.files.forEach((f) => cluster.writeFile(f));
      const oldAuth = `${ROLES.restApi}:${oldSecrets.restApi}`;
      const newAuth = `${ROLES.restApi}:${newSecrets.restApi}`;
      for (const node of cluster.nodes) {
        const url = cluster.restUrl(node);
        // 401 with the old credentials: this node already runs with the new ones (an interrupted rotation).
        const status = await patroniReload(url, oldAuth);
        if (status === 401) await patroniReload(url, newAuth);
      }
      // Patroni applies a reload in its next cycle; done when every node takes the new REST credentials.
      const accepted = await pollUntil(60000, 500, async () => {
        const statuses = await Promise.all(cluster.nodes.map((n) => patroniReload(cluster.restUrl(n), newAuth).catch(() => 0)));
        return statuses.every((s) => s >= 200 && s < 300) ? true : undefined;
      });
      if (!accepted) throw new LocalClusterError("rotation: Patroni did not take the new REST API credentials on every node within 60 s");
      // ... and one more cycle for the PostgreSQL side of the reload (replication passfile, rewind).
      await sleep(cluster.config.patroniLoopWait * 1000 + 500);
    },
    // PgBouncer checks the application's password against the database (auth_query): nothing of
    // its own to rewrite or reload; one login per pool hands it the new password's SCRAM keys.
    pgbouncer: async (newSecrets) => {
      const databases = [cluster.config.database, sessionPoolDatabase(cluster.config)];
      await refreshPoolerLogins(
        databases.map((db) => `postgresql://${ROLES.app}:${encodeURIComponent(newSecrets.app)}@${cluster.addressing.pgbouncer.connect}:${PORTS.pgbouncer}/${db}?${cluster.sslQuery()}`),
      );
    },
    record: async (newSecrets) => {
      cluster.setSecrets(newSecrets, true);
      const pgpass = `${cluster.addressing.pgbouncer.connect}:${PORTS.pgbouncer}:*:${ROLES.app}:${newSecrets.app}\n`;
      writeFileSync(cluster.paths.pgpassFile, pgpass, { mode: 0o600 });
      // The exporters log in as the monitoring role, which no rotation here changes: no restart.
      writeMonitoringFiles(cluster);
      rmSync(pendingSecretsFile(cluster), { force: true });
    },
  }, { log });
  if (result.changed.length === 0) rmSync(pendingSecretsFile(cluster), { force: true });
  return result;
}

// The Kubernetes rotation step's entry point (components/in-cluster-step.ts -> components/rotation/step.ts,
// the step Docker's PasswordRotation runs too) against the real local cluster, under a client writing
// through PgBouncer throughout: all five passwords change. After the step (what the cluster is between
// the rotation Job and the pods' restarts on Kubernetes): every database role takes its new password on
// every group's primary and refuses the old one, pg_dist_authinfo holds the new ones, while Patroni
// still runs with its old files and the rollout's client reaches it with the previous REST credentials
// (tried after the new ones, as the rollout Job does). Then the rest of the change as the local runner
// makes it (Patroni's files rewritten and reloaded, one login per PgBouncer pool with the new
// application password: on Kubernetes the pods restarted by the rollout Job; PgBouncer checks the
// application by auth_query and changes nothing): 0 failed, 0 lost writes, new logins with the new
// passwords, the old ones refused. It changes every password: run late (harness).
import test from "ava";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash, createHmac, pbkdf2Sync } from "node:crypto";
import { runInClusterStep } from "../../components/in-cluster-step.ts";
import { readStepResult } from "../../components/platform/kubernetes/deploy-step.ts";
import { PORTS, ROLES, type ClusterSecrets } from "../../components/render/index.ts";
import { PASSWORD_NAMES } from "../../components/rotation/plan.ts";
import type { RotationResult } from "../../components/rotation/rotate.ts";
import type { RotationStepInputs } from "../../components/rotation/step.ts";
import { patroniHttpTarget } from "../../components/rollout/patroni-http.ts";
import { request } from "../../components/https.ts";
import { generatePassword, pendingSecretsFile, rotateLocalPasswords } from "../../local/rotate.ts";
import { ContinuousWriter, missingWrites } from "../../local/writer.ts";
import { sleep } from "../../local/processes.ts";
import type { PostgresNode } from "../../components/spec.ts";
import { runningCluster } from "./context.ts";
import { quietClient } from "../../components/pg-client.ts";

const cluster = runningCluster();

async function login(url: string, sql = "SELECT 1 AS one"): Promise<{ ok: true; row: Record<string, unknown> } | { ok: false; code: string; message: string }> {
  const client = quietClient({ connectionString: url, connectionTimeoutMillis: 5000 });
  client.on("error", () => undefined);
  try {
    await client.connect();
    return { ok: true, row: (await client.query(sql)).rows[0] ?? {} };
  } catch (error) {
    const { code, message } = error as { code?: string; message?: string };
    return { ok: false, code: code ?? "", message: message ?? String(error) };
  } finally {
    await client.end().catch(() => undefined);
  }
}
const url = (role: string, password: string, host: string, port: number, database: string) => `postgresql://${role}:${encodeURIComponent(password)}@${host}:${port}/${database}?${cluster.sslQuery()}`;
const direct = (node: PostgresNode, role: string, password: string) => url(role, password, cluster.addressing.postgres(node).connect, PORTS.postgres, cluster.config.database);
const viaPgbouncer = (role: string, password: string) => url(role, password, cluster.addressing.pgbouncer.connect, PORTS.pgbouncer, cluster.config.database);

/** Whether a SCRAM-SHA-256 verifier (pg_authid.rolpassword) is `password`'s (RFC 5802 StoredKey). */
function verifierMatches(verifier: string, password: string): boolean {
  const match = /^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):/.exec(verifier);
  if (!match) return false;
  const salted = pbkdf2Sync(password, Buffer.from(match[2], "base64"), Number(match[1]), 32, "sha256");
  const stored = createHash("sha256").update(createHmac("sha256", salted).update("Client Key").digest()).digest("base64");
  return stored === match[3];
}

async function reloadStatus(node: PostgresNode, password: string): Promise<number> {
  const answer = await request(`${cluster.restUrl(node)}/reload`, {
    method: "POST",
    headers: { authorization: `Basic ${Buffer.from(`${ROLES.restApi}:${password}`).toString("base64")}` },
    timeoutMs: 5000,
  });
  return answer.status;
}

test.serial("the rotation step changes every role on every node first; the previous REST credentials reach the not-yet-restarted Patroni; completed, 0 failed writes", async (t) => {
  t.timeout(10 * 60 * 1000);
  const table = "rotation_step_writes";
  await ContinuousWriter.createTable(cluster.primaryUrl(cluster.config.database), table, ROLES.app);
  // Reconnects with whatever password the local cluster's records hold at that moment.
  const writer = new ContinuousWriter({ table, connectionString: async () => cluster.pgbouncerUrl("app") });
  const old: ClusterSecrets = { ...cluster.secrets() };
  const next = Object.fromEntries(PASSWORD_NAMES.map((name) => [name, generatePassword()])) as unknown as ClusterSecrets;
  // The target recorded first, as `npm run local -- rotate-password` does: the local runner completes it below.
  writeFileSync(pendingSecretsFile(cluster), JSON.stringify(next), { mode: 0o600 });
  const input: RotationStepInputs = {
    old,
    next,
    readWriteEndpoint: `${cluster.addressing.haproxy.connect}:${PORTS.haproxyReadWrite}`,
    database: cluster.config.database,
    ca: cluster.certificates().ca,
    timeoutSeconds: 120,
  };
  const dir = mkdtempSync(join(tmpdir(), "dpc-rotation-step-"));
  writeFileSync(join(dir, "input.json"), JSON.stringify(input), { mode: 0o600 });
  const configMap: Record<string, string> = {};
  const lines: string[] = [];
  writer.start();
  await sleep(2000);
  const started = Date.now();
  let status: number;
  try {
    // The image's own rotation step (no stand-in: it needs SQL only).
    status = await runInClusterStep({
      env: { DPC_STEP_RESULT_CONFIGMAP: "dpc-rotation-result", DPC_STEP_TRIGGER: "rotation-trigger", DPC_STEP_NAMESPACE: "dpc" },
      argv: ["rotation"],
      inputDir: dir,
      report: async (_ns, _name, data) => void Object.assign(configMap, data),
      log: (line) => lines.push(line),
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const stepSeconds = (Date.now() - started) / 1000;
  t.log(lines.join("\n"));
  t.is(status, 0);
  const result = readStepResult("dpc-rotation", configMap, "rotation-trigger") as unknown as RotationResult;
  t.deepEqual(result.changed, [...PASSWORD_NAMES]);
  t.deepEqual(result.steps, ["database"], "the step is the database part only: the processes get their files afterwards");
  t.is(result.workers.length, cluster.config.workerGroups, "every worker group's primary ran the change");

  // Between the Job and the pods' restarts: every role's new password on every node (standbys by
  // streaming), the old one refused by every primary.
  for (let group = 0; group < cluster.topology.groups.length; group++) {
    const primary = (await cluster.leader(group))!;
    for (const name of ["superuser", "replication", "rewind", "app"] as const) {
      const fresh = await login(direct(primary, ROLES[name], next[name]));
      t.true(fresh.ok, `${ROLES[name]} with its new password on ${primary.name}: ${JSON.stringify(fresh)}`);
      const stale = await login(direct(primary, ROLES[name], old[name]));
      t.is(stale.ok ? "accepted" : stale.code, "28P01", `${ROLES[name]} with its old password on ${primary.name}`);
    }
    await sleep(500);
    for (const node of cluster.topology.groups[group]) {
      const rows = await login(direct(node, ROLES.superuser, next.superuser), `SELECT json_object_agg(rolname, rolpassword) AS v FROM pg_authid WHERE rolname IN ('${ROLES.superuser}', '${ROLES.replication}', '${ROLES.rewind}', '${ROLES.app}')`);
      t.true(rows.ok, `${node.name}: ${JSON.stringify(rows)}`);
      const verifiers = (rows.ok ? rows.row.v : {}) as Record<string, string>;
      for (const name of ["superuser", "replication", "rewind", "app"] as const) t.true(verifierMatches(verifiers[ROLES[name]] ?? "", next[name]), `${ROLES[name]}'s verifier on ${node.name} is its new password's`);
    }
    const authinfo = await login(
      direct(primary, ROLES.superuser, next.superuser),
      `SELECT count(*) FILTER (WHERE rolename = '${ROLES.superuser}' AND authinfo = 'password=''${next.superuser}''')::int AS superuser,
              count(*) FILTER (WHERE rolename = '${ROLES.app}' AND authinfo = 'password=''${next.app}''')::int AS app
         FROM pg_dist_authinfo WHERE nodeid = 0`,
    );
    t.deepEqual(authinfo.ok ? authinfo.row : authinfo, { superuser: 1, app: 1 }, `pg_dist_authinfo on ${primary.name}`);
  }
  // A distributed count as app on a fresh session: Citus reaches the workers with pg_dist_authinfo's new passwords.
  const counted = await login(url(ROLES.app, next.app, cluster.addressing.haproxy.connect, PORTS.haproxyReadWrite, cluster.config.database), `SELECT count(*)::int AS n FROM ${table}`);
  t.true(counted.ok, `a distributed query as app with its new password: ${JSON.stringify(counted)}`);

  // Patroni still runs with its old files: the new REST password is refused, and the rollout's client
  // (the previous credentials after the current ones) still reaches every group.
  const groups = cluster.topology.groups.map((nodes, group) => ({ group, members: nodes.map((n) => ({ name: n.name, restUrl: cluster.restUrl(n) })) }));
  const auth = (s: ClusterSecrets) => `${ROLES.restApi}:${s.restApi}`;
  const withPrevious = patroniHttpTarget({ groups, restAuth: [auth(next), auth(old)], ca: cluster.certificates().ca });
  const currentOnly = patroniHttpTarget({ groups, restAuth: auth(next), ca: cluster.certificates().ca });
  for (const { group } of groups) {
    await t.notThrowsAsync(withPrevious.patchConfig(group, { postgresql: { parameters: {} } }), `group ${group}: PATCH /config with the previous REST credentials after the current ones`);
    await t.throwsAsync(currentOnly.patchConfig(group, { postgresql: { parameters: {} } }), { message: /HTTP 401/ }, `group ${group}: the new REST password is not Patroni's yet`);
  }

  // The rest of the change (Kubernetes: the Patroni pods replaced by the rollout Job, PgBouncer's Deployment rolled).
  const completed = await rotateLocalPasswords(cluster, [], { log: (line) => lines.push(line) });
  const seconds = (Date.now() - started) / 1000;
  await sleep(2000);
  const writes = await writer.stop();
  t.log(`rotation step ${stepSeconds.toFixed(2)} s (database ${result.seconds.database?.toFixed(2)} s); whole change ${seconds.toFixed(2)} s (${completed.steps.join(" -> ")}); writer: ${writes.acknowledged.length} acknowledged, ${writes.errors} failed${writes.errors ? `: ${writes.errorMessages.join("; ")}` : ""}`);
  t.is(writes.errors, 0, "no transaction of the writer failed");
  t.true(writes.acknowledged.length > 0);
  t.deepEqual(await missingWrites(cluster.primaryUrl(cluster.config.database), table, writes.acknowledged), []);
  t.deepEqual(cluster.secrets(), next, "the local records hold the new passwords");
  // PgBouncer's own admin user (generated, untouched by the rotation).
  t.true((await login(cluster.pgbouncerUrl("admin", "pgbouncer"), "RECONNECT")).ok);
  await sleep(500);
  t.true((await login(viaPgbouncer(ROLES.app, next.app))).ok, "app, new password, through PgBouncer");
  t.false((await login(viaPgbouncer(ROLES.app, old.app))).ok, "app, old password, through PgBouncer");
  for (const node of cluster.nodes) {
    t.is(await reloadStatus(node, old.restApi), 401, `old REST password on ${node.name}`);
    t.is(await reloadStatus(node, next.restApi), 202, `new REST password on ${node.name}`);
  }
  t.false(lines.join("\n").includes(next.superuser) || lines.join("\n").includes(old.superuser), "no password in the step's log");
  for (let group = 0; group < cluster.topology.groups.length; group++) await cluster.waitGroupHealthy(group, 60000);
});

// Password rotation on the running cluster (issue 11, item 3), under a client writing through
// PgBouncer throughout: every password changes (superuser, replication, rewind, REST API, app); new
// logins take the new ones, through PgBouncer and directly, the old ones are refused; Citus' own
// connections between nodes (pg_dist_authinfo) and Patroni (a switchover afterwards) keep working.
// It changes the cluster's passwords: the harness runs it after every other test.
import test from "ava";
import { PORTS, ROLES, type ClusterSecrets } from "../../components/render/index.ts";
import type { PostgresNode } from "../../components/spec.ts";
import { PASSWORD_NAMES } from "../../components/rotation/plan.ts";
import { pendingSecretsFile, rotateLocalPasswords } from "../../local/rotate.ts";
import { rotateDatabasePasswords } from "../../components/rotation/database.ts";
import { planRotation } from "../../components/rotation/plan.ts";
import { EXPORTER_PORTS } from "../../monitoring/index.ts";
import { pollUntil } from "../../local/processes.ts";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { plannedSwitchover } from "../../local/switchover.ts";
import { ContinuousWriter, missingWrites } from "../../local/writer.ts";
import { sleep } from "../../local/processes.ts";
import { LocalCluster } from "../../local/cluster.ts";
import { runningCluster } from "./context.ts";
import { request } from "../../components/https.ts";
import { pgbouncerCommand } from "../../components/pgbouncer-admin.ts";
import { quietClient } from "../../components/pg-client.ts";

const cluster = runningCluster();

/** Logs in and runs `sql`; returns the first row, or the error's SQLSTATE and message. */
async function login(url: string, sql = "SELECT 1 AS one"): Promise<{ ok: true; row: Record<string, unknown> } | { ok: false; code: string; message: string }> {
  const client = quietClient({ connectionString: url, connectionTimeoutMillis: 5000 });
  client.on("error", () => undefined);
  try {
    await client.connect();
    const result = await client.query(sql);
    return { ok: true, row: result.rows[0] ?? {} };
  } catch (error) {
    const { code, message } = error as { code?: string; message?: string };
    return { ok: false, code: code ?? "", message: message ?? String(error) };
  } finally {
    await client.end().catch(() => undefined);
  }
}

const url = (role: string, password: string, host: string, port: number, database: string) =>
  `postgresql://${role}:${encodeURIComponent(password)}@${host}:${port}/${database}?${cluster.sslQuery()}`;
const viaPgbouncer = (role: string, password: string) => url(role, password, cluster.addressing.pgbouncer.connect, PORTS.pgbouncer, cluster.config.database);
const direct = (node: PostgresNode, role: string, password: string) => url(role, password, cluster.addressing.postgres(node).connect, PORTS.postgres, cluster.config.database);

async function patroniReloadStatus(node: PostgresNode, password: string): Promise<number> {
  const answer = await request(`${cluster.restUrl(node)}/reload`, {
    method: "POST",
    headers: { authorization: `Basic ${Buffer.from(`${ROLES.restApi}:${password}`).toString("base64")}` },
    timeoutMs: 5000,
  });
  return answer.status;
}

test.serial("every password rotates on a running cluster under writes: new ones work everywhere, old ones are refused, 0 failed transactions", async (t) => {
  // The superuser's URL with the password of the moment (it changes below).
  const adminUrl = () => cluster.primaryUrl(cluster.config.database);
  const table = "rotation_writes";
  await ContinuousWriter.createTable(adminUrl(), table, ROLES.app);
  // The writer reconnects with whatever password the cluster has at that moment; it runs in one
  // session through PgBouncer's transaction pool, its rows spread over the worker groups by Citus.
  const writer = new ContinuousWriter({ table, connectionString: async () => cluster.pgbouncerUrl("app") });
  // The writer shares this process's event loop: a stall of it (a machine at load 100+) would show
  // as a client timeout that the cluster never caused. Measured, and reported with the result.
  let maxLoopLagMs = 0;
  let tick = Date.now();
  const lagTimer = setInterval(() => {
    maxLoopLagMs = Math.max(maxLoopLagMs, Date.now() - tick - 100);
    tick = Date.now();
  }, 100);
  writer.start();
  await sleep(2000);
  const old: ClusterSecrets = { ...cluster.secrets() };
  // PgBouncer must come through untouched: the same process, the same files (auth_query: no password
  // of the rotation is in them), no RELOAD or RECONNECT.
  const pgbouncerPaths = [cluster.layout.pgbouncer.authFile, cluster.layout.pgbouncerConfigFile];
  const pgbouncerBefore = { pid: readFileSync(cluster.layout.pgbouncer.pidFile!, "utf8").trim(), files: pgbouncerPaths.map((p) => readFileSync(p, "utf8")) };

  const started = Date.now();
  const result = await rotateLocalPasswords(cluster, [...PASSWORD_NAMES], { log: (line) => t.log(line) });
  const seconds = (Date.now() - started) / 1000;
  const next = cluster.secrets();
  await sleep(1000);
  // Every pooled server connection dropped while the writer runs: PgBouncer's next server logins for
  // the application use the SCRAM keys of the rotation's own login with the new password (step 3).
  await pgbouncerCommand(cluster.pgbouncerUrl("admin", "pgbouncer"), "RECONNECT");
  await sleep(2000);
  const writes = await writer.stop();
  clearInterval(lagTimer);
  t.log(`this process's event loop stalled at most ${maxLoopLagMs} ms during the rotation`);
  t.log(
    `rotation of ${result.changed.join(", ")} took ${seconds.toFixed(2)} s (${Object.entries(result.seconds).map(([s, n]) => `${s} ${n.toFixed(2)} s`).join(", ")}); ` +
      `workers changed: ${result.workers.join(", ")}; writer: ${writes.acknowledged.length} writes acknowledged, ${writes.errors} failed${writes.errors ? `: ${writes.errorMessages.join("; ")}` : ""}`,
  );
  t.deepEqual(result.changed, [...PASSWORD_NAMES]);
  t.deepEqual(result.steps, ["database", "patroni", "pgbouncer", "record"]);
  t.is(result.workers.length, cluster.config.workerGroups, "every worker group's primary ran the change");
  for (const name of PASSWORD_NAMES) t.not(next[name], old[name], `${name} changed`);
  t.is(writes.errors, 0, "no transaction of the writer failed");
  t.true(writes.acknowledged.length > 0);
  t.deepEqual(await missingWrites(adminUrl(), table, writes.acknowledged), []);

  const pgbouncerAfter = { pid: readFileSync(cluster.layout.pgbouncer.pidFile!, "utf8").trim(), files: pgbouncerPaths.map((p) => readFileSync(p, "utf8")) };
  t.is(pgbouncerAfter.pid, pgbouncerBefore.pid, "the same PgBouncer process throughout");
  t.true(process.kill(Number(pgbouncerAfter.pid), 0), "PgBouncer's process is alive");
  t.deepEqual(pgbouncerAfter.files, pgbouncerBefore.files, "PgBouncer's auth file and pgbouncer.ini unchanged");
  for (const name of PASSWORD_NAMES) t.false(pgbouncerAfter.files[0].includes(next[name]), `no ${name} password in PgBouncer's auth file`);

  // The application role through PgBouncer, at once (no RECONNECT, no RELOAD): new password in, old
  // out (PgBouncer's own refusal: the verifier it looked up does not match).
  const appNew = await login(viaPgbouncer(ROLES.app, next.app), `SELECT count(*)::int AS n FROM ${table}`);
  t.true(appNew.ok, `app, new password, through PgBouncer: ${JSON.stringify(appNew)}`);
  // A distributed count as the application role: Citus' connections to the workers log in with pg_dist_authinfo.
  if (appNew.ok) t.is(appNew.row.n, writes.acknowledged.length, "the distributed table's rows, counted across the workers as app");
  const appOld = await login(viaPgbouncer(ROLES.app, old.app));
  t.false(appOld.ok, "app, old password, through PgBouncer");
  if (!appOld.ok) t.log(`app, old password, through PgBouncer: ${appOld.code} ${appOld.message}`);
  if (!appOld.ok) t.regex(appOld.message, /authentication failed/);

  // Every database role directly on every group's primary: new in, old refused with 28P01.
  for (let group = 0; group < cluster.topology.groups.length; group++) {
    const primary = (await cluster.leader(group))!;
    for (const name of ["superuser", "replication", "rewind", "app"] as const) {
      const role = ROLES[name];
      const fresh = await login(direct(primary, role, next[name]));
      t.true(fresh.ok, `${role} with its new password on ${primary.name}: ${JSON.stringify(fresh)}`);
      const stale = await login(direct(primary, role, old[name]));
      t.is(stale.ok ? "accepted" : stale.code, "28P01", `${role} with its old password on ${primary.name}`);
    }
    // Every group's pg_dist_authinfo (Patroni wrote the superuser's row on each, at bootstrap) has the
    // new passwords: compared in SQL (the generated passwords need no quoting), never printed.
    const rows = await login(
      direct(primary, ROLES.superuser, next.superuser),
      `SELECT count(*) FILTER (WHERE rolename = '${ROLES.superuser}' AND authinfo = 'password=''${next.superuser}''')::int AS superuser,
              count(*) FILTER (WHERE rolename = '${ROLES.app}' AND authinfo = 'password=''${next.app}''')::int AS app
         FROM pg_dist_authinfo WHERE nodeid = 0`,
    );
    t.deepEqual(rows.ok ? rows.row : rows, { superuser: 1, app: 1 }, `pg_dist_authinfo on ${primary.name}`);
  }

  // pg_dist_authinfo on the coordinator holds the new passwords (compared, never printed).
  const authinfo = await login(adminUrl(), `SELECT string_agg(rolename || '=' || authinfo, ',' ORDER BY rolename) AS rows FROM pg_dist_authinfo WHERE nodeid = 0`);
  t.true(authinfo.ok);
  if (authinfo.ok) {
    const rows = String(authinfo.row.rows);
    t.true(rows.includes(`${ROLES.app}=password='${next.app}'`), "app's pg_dist_authinfo row has the new password");
    t.true(rows.includes(`${ROLES.superuser}=password='${next.superuser}'`) || rows.includes(`${ROLES.superuser}=password=${next.superuser}`), "the superuser's row has the new password");
  }

  // Patroni's REST API: the new credentials accepted, the old ones refused with 401, on every node.
  for (const node of cluster.nodes) {
    t.is(await patroniReloadStatus(node, old.restApi), 401, `old REST API password on ${node.name}`);
    t.is(await patroniReloadStatus(node, next.restApi), 202, `new REST API password on ${node.name}`);
  }

  // Patroni still manages the cluster with the new credentials: a switchover of worker group 1 (the
  // old primary rejoins as a standby: replication, and rewind if needed, with the new passwords).
  const switchover = await plannedSwitchover(cluster, 1);
  t.not(switchover.to, switchover.from);
  await cluster.waitGroupHealthy(1, 60000);
  for (let group = 0; group < cluster.topology.groups.length; group++) await cluster.waitGroupHealthy(group, 60000);
  t.log(`after the rotation: switchover of worker group 1 ${switchover.from} -> ${switchover.to} in ${switchover.seconds.toFixed(2)} s; every group healthy, standbys streaming`);
  const after = await login(viaPgbouncer(ROLES.app, next.app), `SELECT count(*)::int AS n FROM ${table}`);
  t.true(after.ok, `a distributed query as app after the switchover: ${JSON.stringify(after)}`);

  // The exporters log in as the monitoring role, untouched by the rotation: each node's postgres_exporter still does.
  for (const node of cluster.nodes) {
    const metrics = `http://${cluster.addressing.postgres(node).connect}:${EXPORTER_PORTS.postgresExporter}/metrics`;
    const up = await pollUntil(30000, 1000, async () => {
      const text = await fetch(metrics, { signal: AbortSignal.timeout(5000) }).then((r) => r.text(), () => "");
      return /^pg_up 1$/m.test(text) ? true : undefined;
    });
    t.true(up, `postgres_exporter of ${node.name} reports pg_up 1 with the new password`);
  }
});

test.serial("an interrupted rotation (roles changed, files not yet) is completed by `npm run local -- up` on the running cluster", async (t) => {
  const old = { ...cluster.secrets() };
  const next = { ...old, app: `interrupted-${Date.now()}-app` };
  // What a rotation that died after its first step leaves: the target recorded, the roles changed.
  writeFileSync(pendingSecretsFile(cluster), JSON.stringify(next), { mode: 0o600 });
  const client = quietClient({ connectionString: cluster.primaryUrl(cluster.config.database) });
  await client.connect();
  await rotateDatabasePasswords(client, planRotation(old, next).roles).finally(() => client.end());
  const leader = (await cluster.leader(0))!;
  const refused = await login(direct(leader, ROLES.app, old.app));
  t.is(refused.ok ? "accepted" : refused.code, "28P01", "the database refuses the password the runner's files still have");
  // PgBouncer looks the verifier up at each login: it takes the new password already.
  t.true((await login(viaPgbouncer(ROLES.app, next.app))).ok, "PgBouncer takes the new password as soon as the role has it");

  const root = resolve(import.meta.dirname, "../..");
  const up = spawnSync("npm", ["run", "local", "--", "up", "--stack", "local", "--state", cluster.paths.stateDir], { cwd: root, encoding: "utf8", timeout: 300_000 });
  t.log(up.stdout.split("\n").filter((line) => line.startsWith("rotat")).join("\n"));
  t.is(up.status, 0, up.stderr);
  t.regex(up.stdout, /rotated app \(database -> pgbouncer -> record\)/);
  t.false(existsSync(pendingSecretsFile(cluster)), "no rotation pending any more");
  const fresh = new LocalCluster({ stackFile: process.env.DPC_TEST_STACK_FILE!, stateDir: cluster.paths.stateDir, log: () => undefined });
  t.is(fresh.secrets().app, next.app, "secrets.json has the new password");
  const appNew = await login(viaPgbouncer(ROLES.app, next.app));
  t.true(appNew.ok, `app with the completed rotation's password through PgBouncer: ${JSON.stringify(appNew)}`);
});

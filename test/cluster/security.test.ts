// The attacks issue 14 names, each tried against the running local cluster and expected to fail;
// each with a control that the same path works with the right credentials, so a refusal is the
// security's doing and not a broken path.
import test from "ava";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { ROLES } from "../../components/render/types.ts";
import { createCertificateAuthority, issueCertificate } from "../../components/tls/index.ts";
import { request } from "../../components/https.ts";
import { pgbouncerCommand } from "../../components/pgbouncer-admin.ts";
import { runningCluster } from "./context.ts";
import { quietClient } from "../../components/pg-client.ts";

const run = promisify(execFile);
const cluster = runningCluster();
const ETCDCTL = "/usr/bin/etcdctl";

/** Connects with `url` and the given ssl settings; resolves to the error, or undefined when it got in. */
async function connectError(url: string, ssl?: pg.ClientConfig["ssl"]): Promise<(Error & { code?: string }) | undefined> {
  const client = quietClient({ connectionString: url, connectionTimeoutMillis: 5000, ...(ssl === undefined ? {} : { ssl }) });
  try {
    await client.connect();
    await client.query("SELECT 1");
    return undefined;
  } catch (error) {
    return error as Error;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** `url` without its sslmode/sslrootcert: what a careless or hostile client sends. */
function withoutTls(url: string, sslmode: string): string {
  const parsed = new URL(url);
  parsed.searchParams.delete("sslrootcert");
  parsed.searchParams.set("sslmode", sslmode);
  return parsed.toString();
}

// A CA of the attacker's, and a client certificate it signed with names a real client would have.
const rogue = createCertificateAuthority("rogue");
const rogueClient = issueCertificate(rogue, { id: "rogue", commonName: "operator", dnsNames: [], ipAddresses: [], server: false, client: true });

test("a plain (non-TLS) connection to a PostgreSQL node is refused by pg_hba; over TLS it is accepted", async (t) => {
  for (const node of [cluster.nodes[0], cluster.nodes[cluster.nodes.length - 1]]) {
    const error = await connectError(withoutTls(cluster.nodeUrl(node), "disable"));
    t.truthy(error, `${node.name} accepted a plain connection`);
    t.regex(error!.message, /no pg_hba\.conf entry for host .* no encryption/);
    t.is(await connectError(cluster.nodeUrl(node)), undefined, `${node.name} over TLS (verify-full)`);
  }
});

test("a plain connection to PgBouncer is refused; over TLS it is accepted", async (t) => {
  const error = await connectError(withoutTls(cluster.pgbouncerUrl("app"), "disable"));
  t.regex(error?.message ?? "accepted", /SSL required/);
  t.is(await connectError(cluster.pgbouncerUrl("app")), undefined);
});

test("a client that verifies against another CA refuses the cluster's servers (no man in the middle passes either way)", async (t) => {
  for (const url of [cluster.pgbouncerUrl("app"), cluster.nodeUrl(cluster.nodes[0]), cluster.primaryUrl()]) {
    const error = await connectError(withoutTls(url, "verify-full"), { ca: rogue.cert, rejectUnauthorized: true });
    t.regex(error?.message ?? "accepted", /self[- ]signed certificate in certificate chain|unable to verify|certificate/i, url.replace(/:[^:@/]*@/, ":***@"));
  }
});

test("etcd refuses clients without a certificate of the cluster CA, and a write to Patroni's keys with none", async (t) => {
  const endpoint = cluster.etcdUrl(cluster.topology.etcd[0]);
  const key = `/service/${cluster.topology.scope}/attack`;
  const env = { ...process.env, ETCDCTL_API: "3" };
  const dir = mkdtempSync(join(tmpdir(), "dpc-rogue-"));
  try {
    writeFileSync(join(dir, "rogue.crt"), rogueClient.cert);
    writeFileSync(join(dir, "rogue.key"), rogueClient.key, { mode: 0o600 });
    const attempts: [string, string[]][] = [
      ["no certificate, server not verified", ["--insecure-skip-tls-verify", `--endpoints=${endpoint}`]],
      ["the cluster CA but no client certificate", [`--cacert=${cluster.tls.caFile}`, `--endpoints=${endpoint}`]],
      ["a client certificate of another CA", [`--cacert=${cluster.tls.caFile}`, `--cert=${join(dir, "rogue.crt")}`, `--key=${join(dir, "rogue.key")}`, `--endpoints=${endpoint}`]],
      ["plain HTTP", [`--endpoints=${endpoint.replace("https:", "http:")}`]],
    ];
    for (const [what, flags] of attempts) {
      const result = await run(ETCDCTL, [...flags, "--dial-timeout=3s", "--command-timeout=5s", "put", key, "x"], { env }).then(
        (r) => ({ ok: true, output: r.stdout + r.stderr }),
        (e: { stdout?: string; stderr?: string }) => ({ ok: false, output: `${e.stdout ?? ""}${e.stderr ?? ""}` }),
      );
      t.false(result.ok, `etcd accepted a write with ${what}: ${result.output}`);
    }
    // Control: the operator's certificate reads Patroni's keys, and none of the attempts wrote one.
    const operator = [`--cacert=${cluster.tls.caFile}`, `--cert=${cluster.tls.operator.certFile}`, `--key=${cluster.tls.operator.keyFile}`, `--endpoints=${endpoint}`];
    const keys = (await run(ETCDCTL, [...operator, "get", "--prefix", "--keys-only", `/service/${cluster.topology.scope}/`], { env })).stdout;
    t.regex(keys, new RegExp(`/service/${cluster.topology.scope}/0/leader`));
    t.notRegex(keys, /attack/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("Patroni's REST API refuses a switchover without credentials (401) and speaks only HTTPS", async (t) => {
  const leader = (await cluster.leader(0))!;
  const url = `${cluster.restUrl(leader)}/switchover`;
  const body = JSON.stringify({ leader: leader.name });
  const headers = { "content-type": "application/json" };
  t.is((await request(url, { method: "POST", headers, body, timeoutMs: 5000 })).status, 401);
  const wrong = { ...headers, authorization: `Basic ${Buffer.from(`${ROLES.restApi}:not-the-password`).toString("base64")}` };
  t.is((await request(url, { method: "POST", headers: wrong, body, timeoutMs: 5000 })).status, 401);
  // Plain HTTP to the same port gets no API at all.
  await t.throwsAsync(request(url.replace("https:", "http:"), { method: "POST", headers, body, timeoutMs: 3000 }).then((a) => {
    if (a.status >= 200 && a.status < 300) return a;
    throw new Error(`HTTP ${a.status}`);
  }));
  // A client that trusts another CA refuses the API's certificate.
  await t.throwsAsync(request(`${cluster.restUrl(leader)}/cluster`, { identity: { ca: rogue.cert }, timeoutMs: 3000 }));
  t.is((await cluster.leader(0))?.name, leader.name, "no switchover happened");
});

/** A client of `url` (its host, database and TLS settings) as the exporters' role. */
function asMonitor(url: string): pg.Client {
  const parsed = new URL(url);
  parsed.username = ROLES.monitor;
  parsed.password = encodeURIComponent(cluster.monitorPassword());
  return quietClient({ connectionString: parsed.toString(), connectionTimeoutMillis: 5000 });
}

test("the exporters' role reads statistics but no application table (42501)", async (t) => {
  const client = asMonitor(cluster.nodeUrl(cluster.nodes[0], cluster.config.database));
  await client.connect();
  try {
    const stats = await client.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE query IS NOT NULL AND usename IS NOT NULL");
    t.true(stats.rows[0].n > 0, "pg_monitor shows other sessions' activity");
    const super_ = await client.query("SELECT rolsuper FROM pg_roles WHERE rolname = current_user");
    t.false(super_.rows[0].rolsuper);
    for (const table of ["claude_flow.memory_entries", "claude_flow.sessions"]) {
      const error = await t.throwsAsync(client.query(`SELECT * FROM ${table} LIMIT 1`));
      t.is((error as Error & { code?: string }).code, "42501", `${table}: ${error?.message}`);
    }
  } finally {
    await client.end();
  }
});

test("the exporters' role reads PgBouncer's statistics but cannot command it (not an admin)", async (t) => {
  const client = asMonitor(cluster.pgbouncerUrl("admin", "pgbouncer"));
  await client.connect();
  try {
    const pools = await client.query("SHOW POOLS");
    t.true(pools.rows.some((row: { database: string }) => row.database === cluster.config.database), "SHOW POOLS lists the application database");
    for (const command of ["PAUSE", "RECONNECT", "SHUTDOWN"]) {
      const error = await t.throwsAsync(client.query(command));
      t.regex(error!.message, /admin access needed/, command);
    }
  } finally {
    await client.end();
  }
});

/** `url` with another user and password. */
function as(url: string, user: string, password: string): string {
  const parsed = new URL(url);
  parsed.username = user;
  parsed.password = encodeURIComponent(password);
  return parsed.toString();
}

test("PgBouncer's auth_query: the superuser cannot log in through PgBouncer; the lookup role can only run its function, the app role not even that", async (t) => {
  // The superuser's right password, through PgBouncer: the lookup returns no row for superusers.
  const superuser = await connectError(as(cluster.pgbouncerUrl("app"), ROLES.superuser, cluster.secrets().superuser));
  t.truthy(superuser, "the superuser logged in through PgBouncer");
  t.log(`superuser through PgBouncer: ${superuser?.message}`);
  // A replication role likewise.
  const replication = await connectError(as(cluster.pgbouncerUrl("app"), ROLES.replication, cluster.secrets().replication));
  t.truthy(replication, "the replication role logged in through PgBouncer");
  // Control: the application role through the same path.
  t.is(await connectError(cluster.pgbouncerUrl("app")), undefined);

  // The lookup role, directly on the coordinator primary (TLS, scram): the function answers for the
  // application role, nothing for the superuser; pg_authid itself is out of reach.
  const lookupUrl = as(cluster.primaryUrl(cluster.config.database), ROLES.poolerLookup, cluster.poolerCredentials().lookup);
  const lookup = quietClient({ connectionString: lookupUrl, connectionTimeoutMillis: 5000 });
  await lookup.connect();
  try {
    const app = await lookup.query("SELECT uname, phash FROM pgbouncer_auth.user_lookup($1)", [ROLES.app]);
    t.is(app.rows.length, 1);
    t.regex(app.rows[0].phash, /^SCRAM-SHA-256\$/);
    for (const role of [ROLES.superuser, ROLES.replication, ROLES.poolerLookup, "no_such_role"]) {
      t.is((await lookup.query("SELECT uname FROM pgbouncer_auth.user_lookup($1)", [role])).rows.length, 0, role);
    }
    const authid = await t.throwsAsync(lookup.query("SELECT rolpassword FROM pg_authid LIMIT 1"));
    t.is((authid as Error & { code?: string }).code, "42501");
    const table = await t.throwsAsync(lookup.query("SELECT * FROM claude_flow.memory_entries LIMIT 1"));
    t.is((table as Error & { code?: string }).code, "42501");
  } finally {
    await lookup.end();
  }
  // The application role (and so PUBLIC) may not execute the function.
  const app = quietClient({ connectionString: as(cluster.primaryUrl(cluster.config.database), ROLES.app, cluster.secrets().app), connectionTimeoutMillis: 5000 });
  await app.connect();
  try {
    const error = await t.throwsAsync(app.query("SELECT * FROM pgbouncer_auth.user_lookup($1)", [ROLES.app]));
    t.is((error as Error & { code?: string }).code, "42501", error?.message);
  } finally {
    await app.end();
  }
  // PgBouncer's admin user is no database role: it logs in to PgBouncer's console only.
  const adminInDatabase = await connectError(as(cluster.primaryUrl(cluster.config.database), ROLES.poolerAdmin, cluster.poolerCredentials().admin));
  t.is(adminInDatabase?.code, "28P01");
  await t.notThrowsAsync(pgbouncerCommand(cluster.pgbouncerUrl("admin", "pgbouncer"), "SHOW VERSION"), "PgBouncer's console as its admin user");
});

// The rendered pgbouncer.ini, parsed, for what real drivers need: prepared statements tracked,
// connect-time settings honoured or refused, no session state crossing clients, a session-mode pool.
import test from "ava";
import { readFileSync } from "node:fs";
import { parse as parseIni } from "ini";
import { parseClusterConfig, planTopology } from "../../components/spec.ts";
import { renderCluster, PORTS, type ClusterSecrets } from "../../components/render/index.ts";
import { placeholderCertificates } from "../../components/shipped-files.ts";
import { containerAddressing, containerLayout, dockerHostNaming } from "../../components/render/container.ts";
import {
  MAX_PREPARED_STATEMENTS,
  PGBOUNCER_MIN_VERSION,
  SERVER_RESET_QUERY,
  sessionPoolDatabase,
  sessionPoolSize,
} from "../../components/render/pgbouncer.ts";

const secrets: ClusterSecrets = { superuser: "su-pw", replication: "repl-pw", rewind: "rewind-pw", restApi: "rest-pw", app: "app-pw" };
const pooler = { lookup: "lookup-pw", admin: "admin-pw", monitor: "monitor-pw" };

function renderIni(overrides: Record<string, unknown> = {}) {
  const config = parseClusterConfig(overrides);
  const topology = planTopology(config);
  const addressing = containerAddressing(config, topology, dockerHostNaming);
  const rendered = renderCluster(config, topology, addressing, containerLayout(config), secrets, pooler, placeholderCertificates(config));
  const file = rendered.pgbouncer.find((f) => f.path.endsWith("pgbouncer.ini"))!;
  return { config, addressing, content: file.content, ini: parseIni(file.content) };
}

function connstr(value: string): Record<string, string> {
  return Object.fromEntries(value.split(/\s+/).map((kv) => kv.split("=") as [string, string]));
}

function list(value: unknown): string[] {
  return String(value).split(",").map((s) => s.trim()).filter(Boolean);
}

test("pgbouncer.ini: prepared statements tracked in the transaction pool (max_prepared_statements = 200)", (t) => {
  const { ini } = renderIni();
  t.is(ini.pgbouncer.pool_mode, "transaction");
  t.is(Number(ini.pgbouncer.max_prepared_statements), 200);
  t.is(MAX_PREPARED_STATEMENTS, 200);
  t.is(PGBOUNCER_MIN_VERSION, "1.21");
});

test("pgbouncer.ini: a failed server login is retried after 0.25 s (HAProxy's read-write check interval), not 15 s", (t) => {
  const { ini } = renderIni();
  // PgBouncer takes fractional seconds here (its times are microseconds; `SHOW CONFIG` of 1.24 reads back 0.25).
  t.is(ini.pgbouncer.server_login_retry, "0.25");
  t.is(Number(ini.pgbouncer.server_connect_timeout), 3);
});

test("pgbouncer.ini: `options` is not ignored (connect-time settings are honoured when tracked, refused otherwise)", (t) => {
  const { ini } = renderIni();
  t.deepEqual(list(ini.pgbouncer.ignore_startup_parameters), ["extra_float_digits"]);
  t.false(list(ini.pgbouncer.ignore_startup_parameters).includes("options"));
  // Tracked: restored per client on whichever server connection it gets.
  t.deepEqual(list(ini.pgbouncer.track_extra_parameters), ["IntervalStyle", "default_transaction_read_only"]);
});

test("pgbouncer.ini: every released server connection is reset, in both pools, keeping only PgBouncer's own prepared statements", (t) => {
  const { ini, content } = renderIni();
  t.is(Number(ini.pgbouncer.server_reset_query_always), 1);
  // The ini package would cut the value at nothing here; read the raw line too, so the test sees what PgBouncer reads.
  const raw = content.split("\n").find((l) => l.startsWith("server_reset_query ="))!;
  const query = raw.slice(raw.indexOf("=") + 1).trim();
  t.is(query, SERVER_RESET_QUERY);
  const doBlock = query.indexOf("DO $$");
  const statements = [...query.slice(0, doBlock).split(";").map((s) => s.trim()).filter(Boolean), query.slice(doBlock)];
  t.is(statements.length, 9);
  t.deepEqual(statements.slice(0, 8), [
    "CLOSE ALL",
    "SET SESSION AUTHORIZATION DEFAULT",
    "RESET ROLE",
    "RESET ALL",
    "UNLISTEN *",
    "SELECT pg_advisory_unlock_all()",
    "DISCARD TEMP",
    "DISCARD SEQUENCES",
  ]);
  t.regex(statements[8], /^DO \$\$.*FROM pg_prepared_statements WHERE name NOT LIKE 'PGBOUNCER\\_%'.*DEALLOCATE %I.*END\$\$$/);
  // Not DISCARD ALL / DEALLOCATE ALL / DISCARD PLANS: PgBouncer would forget (or PostgreSQL drop) the
  // statements it keeps prepared for every client, and each transaction would prepare them again.
  for (const word of ["DISCARD ALL", "DEALLOCATE ALL", "DISCARD PLANS"]) t.false(query.includes(word), word);
  // One line: PgBouncer's ini reads a value to the end of its line.
  t.false(query.includes("\n"));
});

test("pgbouncer.ini: a session-mode pool `<database>_session` to the same database, its own small cap", (t) => {
  const { ini, config, addressing } = renderIni();
  t.is(sessionPoolDatabase(config), "vectors_session");
  const transaction = connstr(ini.databases.vectors as string);
  const session = connstr(ini.databases.vectors_session as string);
  t.deepEqual(transaction, { host: addressing.haproxy.connect, port: String(PORTS.haproxyReadWrite), dbname: "vectors" });
  t.deepEqual(session, {
    host: addressing.haproxy.connect,
    port: String(PORTS.haproxyReadWrite),
    dbname: "vectors",
    pool_mode: "session",
    pool_size: "7",
    max_db_connections: "7",
  });
  t.is(sessionPoolSize(config), 7); // ceil(25 / 4)
  t.is(Number(ini.pgbouncer.max_db_connections), 50);
});

test("pgbouncer.ini: session pool size follows poolSize (a quarter, at least 2); names follow `database`", (t) => {
  const small = renderIni({ poolSize: 1 });
  t.is(connstr(small.ini.databases.vectors_session as string).pool_size, "2");
  const local = renderIni({ poolSize: 40, database: "app_db" });
  t.deepEqual(Object.keys(local.ini.databases).sort(), ["app_db", "app_db_session"]);
  t.is(connstr(local.ini.databases.app_db_session as string).pool_size, "10");
  t.is(connstr(local.ini.databases.app_db_session as string).dbname, "app_db");
});

test("install-pgbouncer.sh: the version it requires is the renderer's, and it builds Debian 13's source package", (t) => {
  const script = readFileSync(new URL("../../scripts/install-pgbouncer.sh", import.meta.url), "utf8");
  t.regex(script, new RegExp(`^MIN_VERSION=${PGBOUNCER_MIN_VERSION.replace(".", "\\.")}\\b`, "m"));
  t.regex(script, /^PGBOUNCER=\/usr\/sbin\/pgbouncer\b/m);
  t.regex(script, /deb-src \[signed-by=\/usr\/share\/keyrings\/debian-archive-keyring\.gpg\] http:\/\/deb\.debian\.org\/debian trixie main/);
  t.regex(script, /apt-get "\$\{APT_OPTS\[@\]\}" source --download-only -qq pgbouncer/);
  const install = readFileSync(new URL("../../scripts/install.sh", import.meta.url), "utf8");
  t.true(install.includes('bash "$HERE/install-pgbouncer.sh"'));
});

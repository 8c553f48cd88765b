// The pooler as real drivers meet it, through PgBouncer, as the `app` role: protocol-level prepared
// statements across pooled server connections (pgbench -M prepared, `pg` named queries), connect-time
// settings honoured or refused (never silently dropped), and no session state (settings, advisory
// locks, temporary tables, SQL PREPARE) reaching the next client of a server connection; the
// session-mode pool `<database>_session` keeps them for its own client. Registered by the local
// cluster's test (test/cluster/pooler.test.ts) and the Docker test, each with its own target.
import type { TestFn } from "ava";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { findPgbench } from "../../benchmarks/pgbench.ts";
import { BENCHMARK_SCHEMA } from "../../sql/migrations.ts";
import { quietClient } from "../../components/pg-client.ts";

/** Where the checks connect: PgBouncer's transaction pool and its session pool, as `app` (password in the URL). */
export interface PoolerTarget {
  appUrl: string;
  sessionUrl: string;
}

const run = promisify(execFile);

export const POOLER_TABLE = `${BENCHMARK_SCHEMA}.pooler_accounts`;
const ACCOUNTS = 1000;

async function connect(url: string, extra: Partial<pg.ClientConfig> = {}): Promise<pg.Client> {
  const client = quietClient({ connectionString: url, connectionTimeoutMillis: 5000, ...extra });
  await client.connect();
  return client;
}

async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = await connect(url);
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

const pid = async (client: pg.Client) => (await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0].pid;
const show = async (client: pg.Client, name: string) => (await client.query(`SHOW ${name}`)).rows[0][name.toLowerCase()] as string;

/**
 * Registers the pooler checks as serial tests of `test`, in order: a table, the checks, its drop.
 * `ready` says whether the target is up (false fails the first check at once, naming why).
 */
export function registerPoolerChecks(test: TestFn, target: PoolerTarget, ready: () => boolean = () => true): void {
  const APP_URL = target.appUrl;
  const SESSION_URL = target.sessionUrl;

  test.serial("pooler: a table of accounts for pgbench and the read-only checks", async (t) => {
    t.true(ready(), "the cluster is not up");
    await withClient(APP_URL, async (client) => {
      await client.query(`DROP TABLE IF EXISTS ${POOLER_TABLE}`);
      await client.query(`CREATE TABLE ${POOLER_TABLE} (aid int PRIMARY KEY, abalance int NOT NULL DEFAULT 0)`);
      await client.query(`INSERT INTO ${POOLER_TABLE} (aid) SELECT generate_series(1, ${ACCOUNTS})`);
    });
  });

  test.serial("pgbench -M prepared -c 8 through PgBouncer: 0 failed transactions, no client aborted", async (t) => {
    const pgbench = findPgbench();
    if (!pgbench) return t.fail("pgbench not found (postgresql-client)");
    const url = new URL(APP_URL);
    const password = decodeURIComponent(url.password);
    url.password = "";
    const dir = mkdtempSync(join(tmpdir(), "dpc-pooler-"));
    try {
      const script = join(dir, "tpcb-like.sql");
      writeFileSync(
        script,
        [
          `\\set aid random(1, ${ACCOUNTS})`,
          "\\set delta random(-5000, 5000)",
          "BEGIN;",
          `UPDATE ${POOLER_TABLE} SET abalance = abalance + :delta WHERE aid = :aid;`,
          `SELECT abalance FROM ${POOLER_TABLE} WHERE aid = :aid;`,
          "END;",
          `SELECT count(*) FROM ${POOLER_TABLE} WHERE aid <= :aid;`,
          "",
        ].join("\n"),
      );
      // -j 8: a thread per client. pgbench up to 15 prepares with a blocking call, which with fewer
      // threads than clients can wait on a server connection held by another client of its own thread.
      const args = ["-n", "-M", "prepared", "-f", script, "-c", "8", "-j", "8", "-T", "10", url.toString()];
      let stdout = "";
      let stderr = "";
      let code = 0;
      try {
        ({ stdout, stderr } = await run(pgbench, args, { env: { ...process.env, PGPASSWORD: password }, timeout: 90_000 }));
      } catch (error) {
        const failed = error as { stdout?: string; stderr?: string; code?: number };
        ({ stdout = "", stderr = "" } = failed);
        code = failed.code ?? 1;
      }
      t.log(stdout.split("\n").filter((l) => /processed|failed|tps|latency average/.test(l)).join("; "));
      t.is(code, 0, stderr);
      t.notRegex(stderr, /prepared statement .* (already exists|does not exist)/);
      t.notRegex(stderr + stdout, /aborted/);
      const processed = Number(/number of transactions actually processed: (\d+)/.exec(stdout)?.[1]);
      const failed = Number(/number of failed transactions: (\d+)/.exec(stdout)?.[1]);
      t.true(processed > 100, `processed ${processed}`);
      t.is(failed, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test.serial("pg named queries across pooled server connections: prepared once per client, run on whichever server it gets", async (t) => {
    const a = await connect(APP_URL);
    const b = await connect(APP_URL);
    const c = await connect(APP_URL);
    try {
      const named = (client: pg.Client, value: number) =>
        client.query<{ n: number; pid: number }>({ name: "pooler_named", text: "SELECT $1::int + 1 AS n, pg_backend_pid() AS pid", values: [value] });
      const first = await named(a, 1);
      t.is(first.rows[0].n, 2);
      // b takes a server connection (LIFO: the one a just released) and holds it in a transaction, so a's
      // next execution of its prepared statement runs on another server connection.
      await b.query("BEGIN");
      const held = await pid(b);
      const second = await named(a, 41);
      t.is(second.rows[0].n, 42);
      t.not(second.rows[0].pid, held, "a ran on a server connection b did not hold");
      // The same name with another text, from another client: names belong to their client.
      const other = await c.query<{ s: string }>({ name: "pooler_named", text: "SELECT $1::text || '!' AS s", values: ["c"] });
      t.is(other.rows[0].s, "c!");
      await b.query("COMMIT");
      // Many clients, many executions, interleaved with transactions that pin server connections.
      const clients = [a, b, c, ...(await Promise.all(Array.from({ length: 5 }, () => connect(APP_URL))))];
      try {
        const pids = new Set<number>();
        await Promise.all(
          clients.map(async (client, index) => {
            for (let i = 0; i < 25; i++) {
              if (i % 5 === 0) await client.query("BEGIN; SELECT pg_sleep(0.005); COMMIT");
              const result = await client.query<{ n: number; pid: number }>({ name: "pooler_many", text: "SELECT $1::int * 2 AS n, pg_backend_pid() AS pid", values: [index * 100 + i] });
              t.is(result.rows[0].n, (index * 100 + i) * 2);
              pids.add(result.rows[0].pid);
            }
          }),
        );
        t.log(`8 clients, 200 executions of one named query, on ${pids.size} server connections`);
        t.true(pids.size > 1);
      } finally {
        await Promise.all(clients.slice(3).map((client) => client.end()));
      }
    } finally {
      await Promise.all([a.end(), b.end(), c.end()]);
    }
  });

  test.serial("connect-time statement_timeout (options -c) is refused with an error, not dropped", async (t) => {
    for (const url of [APP_URL, SESSION_URL]) {
      const error = await t.throwsAsync(connect(url, { options: "-c statement_timeout=100" }));
      t.regex(error!.message, /unsupported startup parameter in options: statement_timeout/);
    }
    // PGOPTIONS, as psql and libpq-based drivers pass it, is the same startup parameter.
    const url = new URL(APP_URL);
    const password = decodeURIComponent(url.password);
    url.password = ""; // through PGPASSWORD, not the command line
    const { stdout, stderr } = await run("psql", ["-XAtc", "SHOW statement_timeout", url.toString()], {
      env: { ...process.env, PGPASSWORD: password, PGOPTIONS: "-c statement_timeout=100", PGCONNECT_TIMEOUT: "5" },
    }).catch((e: { stdout: string; stderr: string }) => e);
    t.is(stdout, "");
    t.regex(stderr, /unsupported startup parameter in options: statement_timeout/);
  });

  test.serial("a tracked connect-time setting holds for its client on every server connection, and for no other", async (t) => {
    const readOnly = await connect(APP_URL, { options: "-c default_transaction_read_only=on" });
    const other = await connect(APP_URL);
    try {
      t.is(await show(readOnly, "default_transaction_read_only"), "on");
      await t.throwsAsync(readOnly.query(`UPDATE ${POOLER_TABLE} SET abalance = 0 WHERE aid = 1`), { message: /read-only transaction/ });
      // other gets the server connection readOnly just used: not read-only.
      t.is(await show(other, "default_transaction_read_only"), "off");
      await other.query(`UPDATE ${POOLER_TABLE} SET abalance = 0 WHERE aid = 1`);
      // readOnly, on whatever server connection it gets now, still read-only.
      await other.query("BEGIN");
      t.is(await show(readOnly, "default_transaction_read_only"), "on");
      await other.query("COMMIT");
    } finally {
      await Promise.all([readOnly.end(), other.end()]);
    }
  });

  // Each attempt is valid on its own; reuse of a's connection by b is likely but not certain (another
  // idle server connection may be handed out), so several attempts, at least one of which must reuse.
  const ATTEMPTS = 12;
  test.serial("transaction pool: SET, an advisory lock, a temporary table and SQL PREPARE of one client never reach the next", async (t) => {
    const key = 424_242;
    let sameBackend = 0;
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const a = await connect(APP_URL);
      const b = await connect(APP_URL);
      try {
        await a.query("SET statement_timeout = '1234ms'");
        await a.query("SELECT pg_advisory_lock($1)", [key]);
        await a.query("CREATE TEMP TABLE pooler_tmp (x int)");
        await a.query("PREPARE pooler_sql_prepared AS SELECT 1");
        await a.query("SET default_transaction_read_only = on"); // the case: tracked, so a's alone
        const aPid = await pid(a);
        // Give PgBouncer a moment to put a's server connection back in the pool.
        await new Promise((r) => setTimeout(r, 100));
        // b, next on the connection a released (PgBouncer reuses server connections LIFO):
        const bPid = await pid(b);
        if (bPid === aPid) sameBackend++;
        t.not(await show(b, "statement_timeout"), "1234ms");
        t.is(await show(b, "default_transaction_read_only"), "off");
        await b.query(`UPDATE ${POOLER_TABLE} SET abalance = abalance WHERE aid = 2`); // not read-only
        t.true((await b.query<{ got: boolean }>("SELECT pg_try_advisory_lock($1) AS got", [key])).rows[0].got, "the advisory lock is free");
        await b.query("SELECT pg_advisory_unlock_all()");
        t.is((await b.query<{ t: string | null }>("SELECT to_regclass('pg_temp.pooler_tmp')::text AS t")).rows[0].t, null);
        t.is(Number((await b.query("SELECT count(*) AS n FROM pg_prepared_statements WHERE name = 'pooler_sql_prepared'")).rows[0].n), 0);
        // No advisory lock survives its client's transaction anywhere.
        const locks = await b.query("SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = $1", [key]);
        t.is(Number(locks.rows[0].n), 0);
      } finally {
        await Promise.all([a.end(), b.end()]);
      }
    }
    t.log(`b ran on a's server connection in ${sameBackend} of ${ATTEMPTS} attempts`);
    t.true(sameBackend > 0, "at least one attempt exercised the reuse of a's server connection");
  });

  test.serial("session pool `<database>_session`: session state lasts for its client, and is reset before the next", async (t) => {
    const key = 434_343;
    const a = await connect(SESSION_URL);
    let aPid: number;
    try {
      await a.query("SET statement_timeout = '1234ms'");
      await a.query("SELECT pg_advisory_lock($1)", [key]);
      await a.query("CREATE TEMP TABLE pooler_session_tmp (x int)");
      await a.query({ name: "pooler_session_named", text: "SELECT $1::int AS n", values: [1] });
      aPid = await pid(a);
      // All of it holds for a, across transactions.
      t.is(await show(a, "statement_timeout"), "1234ms");
      t.is((await a.query("SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND pid = pg_backend_pid()", [key])).rows[0].n, "1");
      await a.query("INSERT INTO pooler_session_tmp VALUES (1)");
      t.is((await a.query({ name: "pooler_session_named", text: "SELECT $1::int AS n", values: [2] })).rows[0].n, 2);
      // Another session client meanwhile: its own server connection, the lock is taken.
      await withClient(SESSION_URL, async (other) => {
        t.not(await pid(other), aPid);
        t.false((await other.query("SELECT pg_try_advisory_lock($1) AS got", [key])).rows[0].got);
      });
    } finally {
      await a.end();
    }
    // PgBouncer reuses the server connection released last (LIFO), once its reset query
    // (DISCARD ALL) has run: give the reset time, or the next client gets the other idle one.
    await new Promise((r) => setTimeout(r, 500));
    // The next client of a's server connection sees none of it, and can prepare the same name.
    let reused = false;
    for (let attempt = 0; attempt < 5 && !reused; attempt++) {
      await withClient(SESSION_URL, async (b) => {
        reused = (await pid(b)) === aPid;
        t.not(await show(b, "statement_timeout"), "1234ms");
        t.true((await b.query("SELECT pg_try_advisory_lock($1) AS got", [key])).rows[0].got);
        t.is((await b.query("SELECT to_regclass('pg_temp.pooler_session_tmp')::text AS t")).rows[0].t, null);
        t.is((await b.query({ name: "pooler_session_named", text: "SELECT $1::int AS n", values: [3] })).rows[0].n, 3);
      });
    }
    t.true(reused, "a later session client ran on a's server connection");
  });

  test.serial("pooler: drop the accounts table", async (t) => {
    await withClient(APP_URL, (client) => client.query(`DROP TABLE IF EXISTS ${POOLER_TABLE}`));
    t.pass();
  });
}

// The Schema's work, without a database: the retry loop around the migration runner (a fake `apply`,
// a fake clock), which errors mean "no leader yet", and the fingerprint that decides re-applying.
import test from "ava";
import { applySchema, applySchemaWithRetry, briefError, endpointOf, isRetryableError, NO_POOLER_NOTE, RECONNECT_NOTE } from "../../components/schema-apply.ts";
import { migrationsFingerprint } from "../../components/schema.ts";
import { parseClusterConfig } from "../../components/spec.ts";
import { MigrationDriftError, type ApplyResult } from "../../sql/apply.ts";

const config = parseClusterConfig({});
const URL = "postgresql://postgres:s3cret-pw@localhost:5000/vectors";
const RESULT: ApplyResult = { version: "008_x", applied: ["001_x", "008_x"], citus: true, notes: [] };

const pgError = (code: string, message: string) => Object.assign(new Error(message), { code });
const socketError = (code: string) => Object.assign(new Error(`connect ${code} 127.0.0.1:5000`), { code });

/** A fake clock that advances only when the loop sleeps, and a log. */
function harness() {
  let clock = 0;
  const sleeps: number[] = [];
  const lines: string[] = [];
  return {
    sleeps,
    lines,
    options: {
      timeoutMs: 60_000,
      intervalMs: 5_000,
      now: () => clock,
      sleep: async (ms: number) => {
        sleeps.push(ms);
        clock += ms;
      },
      log: (line: string) => lines.push(line),
    },
  };
}

test("retries while no leader answers (refused, dropped, read-only inside a migration), then applies", async (t) => {
  const failures: unknown[] = [
    socketError("ECONNREFUSED"),
    new Error("Connection terminated unexpectedly"),
    // applyMigrations wraps a failed statement: the read-only error is the cause.
    new Error("migration 001_extensions failed: cannot execute CREATE EXTENSION in a read-only transaction", {
      cause: pgError("25006", "cannot execute CREATE EXTENSION in a read-only transaction"),
    }),
    pgError("57P03", "the database system is starting up"),
  ];
  const calls: string[] = [];
  const { options, sleeps, lines } = harness();
  const result = await applySchemaWithRetry(URL, config, {
    ...options,
    apply: async (url, given) => {
      calls.push(url);
      t.is(given, config);
      const failure = failures.shift();
      if (failure) throw failure;
      return RESULT;
    },
  });
  t.deepEqual(result, RESULT);
  t.is(calls.length, 5);
  t.deepEqual(sleeps, [5_000, 5_000, 5_000, 5_000]);
  t.is(lines.filter((l) => l.startsWith("schema: waiting for a leader at localhost:5000")).length, 4);
  t.regex(lines.at(-1)!, /^schema: version 008_x at localhost:5000 \(attempt 5; applied: 001_x, 008_x\)$/);
  t.false(lines.some((l) => l.includes("s3cret-pw")), "a log line holds the password");
});

test("a final error (wrong password, SQL error, drifted migration) fails at once", async (t) => {
  for (const error of [
    pgError("28P01", 'password authentication failed for user "postgres"'),
    pgError("42601", "syntax error at or near"),
    new MigrationDriftError("003_tables", "a".repeat(64), "b".repeat(64)),
  ]) {
    const { options, sleeps } = harness();
    let calls = 0;
    const thrown = await t.throwsAsync(applySchemaWithRetry(URL, config, { ...options, apply: async () => { calls++; throw error; } }));
    t.is(thrown, error);
    t.is(calls, 1);
    t.deepEqual(sleeps, []);
  }
});

test("gives up after the timeout, naming the endpoint and the last error, never the password", async (t) => {
  const { options, sleeps } = harness();
  let calls = 0;
  const error = await t.throwsAsync(
    applySchemaWithRetry(URL, config, { ...options, timeoutMs: 20_000, apply: async () => { calls++; throw socketError("ECONNREFUSED"); } }),
  );
  // Attempts at t = 0, 5, 10, 15, 20 s; the next would start after the deadline.
  t.is(calls, 5);
  t.is(sleeps.length, 4);
  t.regex(error!.message, /^schema: no leader answered at localhost:5000 within 20 s \(5 attempts\); last error: connect ECONNREFUSED/);
  t.false(error!.message.includes("s3cret-pw"));
});

test("isRetryableError: socket errors, connection SQLSTATEs, read-only, starting up, Citus metadata out of sync; not auth or SQL errors", (t) => {
  for (const code of ["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENOTFOUND", "EAI_AGAIN"]) t.true(isRetryableError(socketError(code)), code);
  for (const code of ["08006", "08001", "08P01", "25006", "57P01", "57P03", "53300", "3D000"]) t.true(isRetryableError(pgError(code, "x")), code);
  t.true(isRetryableError(new Error("Connection terminated due to connection timeout")));
  t.true(isRetryableError(new Error("outer", { cause: new Error("inner", { cause: pgError("25006", "read-only") }) })));
  for (const code of ["28P01", "28000", "42601", "42P01", "XX000"]) t.false(isRetryableError(pgError(code, "x")), code);
  // Citus until it has synced its metadata to a worker group's new primary; other 55000s are final.
  t.true(isRetryableError(new Error("migration 0003 failed", { cause: pgError("55000", "dpc-worker1-0:5432 is a metadata node, but is out of sync") })));
  t.false(isRetryableError(pgError("55000", "cannot drop the extension")));
  t.false(isRetryableError(new Error("anything else")));
  t.false(isRetryableError(undefined));
});

test("endpointOf and briefError say where and what, without credentials", (t) => {
  t.is(endpointOf(URL), "localhost:5000");
  t.is(endpointOf("not a url"), "(unparsable URL)");
  t.is(briefError(pgError("25006", "read-only\nDETAIL: more")), "25006 read-only");
  t.is(briefError(socketError("ECONNREFUSED")), "connect ECONNREFUSED 127.0.0.1:5000");
});

test("migrationsFingerprint: stable, changed by what the SQL depends on, not by pools or ports", (t) => {
  const base = migrationsFingerprint(config);
  t.regex(base, /^[0-9a-f]{64}$/);
  t.is(migrationsFingerprint(parseClusterConfig({})), base);
  t.is(migrationsFingerprint(parseClusterConfig({ poolSize: 40, grafanaPort: 3001, coordinatorMembers: 5 })), base);
  // workerGroups: the distribution step checks that pg_dist_node lists that many worker groups.
  for (const change of [{ embeddingDimensions: 768 }, { hnswM: 24 }, { hnswEfSearch: 100 }, { shardCount: 24 }, { vectorExtension: "ruvector" }, { workerGroups: 2 }]) {
    t.not(migrationsFingerprint(parseClusterConfig(change)), base, JSON.stringify(change));
  }
});

const ADMIN_URL = "postgresql://postgres:s3cret-pw@localhost:6432/pgbouncer";

test("applySchema: after migrations applied, RECONNECT on PgBouncer's admin console (retried while it does not answer)", async (t) => {
  const h = harness();
  const commands: [string, string][] = [];
  const failures: unknown[] = [socketError("ETIMEDOUT")];
  const result = await applySchema(URL, ADMIN_URL, config, {
    ...h.options,
    apply: async () => RESULT,
    adminCommand: async (url, command) => {
      commands.push([url, command]);
      if (failures.length > 0) throw failures.shift();
    },
  });
  t.deepEqual(commands, [[ADMIN_URL, "RECONNECT"], [ADMIN_URL, "RECONNECT"]]);
  t.deepEqual(h.sleeps, [5_000]);
  t.true(result.notes.includes(RECONNECT_NOTE));
  t.false(h.lines.join("\n").includes("s3cret-pw"), "the password never reaches the log");
});

test("applySchema: no PgBouncer listening yet (created after the schema step: refused, or no such name): no RECONNECT, no wait, noted", async (t) => {
  for (const code of ["ECONNREFUSED", "ENOTFOUND"]) {
    const h = harness();
    const commands: string[] = [];
    const result = await applySchema(URL, ADMIN_URL, config, {
      ...h.options,
      apply: async () => RESULT,
      adminCommand: async (_url, command) => {
        commands.push(command);
        throw socketError(code);
      },
    });
    t.deepEqual(commands, ["RECONNECT"], code);
    t.deepEqual(h.sleeps, [], code);
    t.true(result.notes.includes(NO_POOLER_NOTE), code);
    t.false(result.notes.includes(RECONNECT_NOTE), code);
  }
});

test("applySchema: nothing applied, no RECONNECT (pooled sessions already have the settings)", async (t) => {
  const h = harness();
  let commands = 0;
  const result = await applySchema(URL, ADMIN_URL, config, {
    ...h.options,
    apply: async () => ({ ...RESULT, applied: [] }),
    adminCommand: async () => void commands++,
  });
  t.is(commands, 0);
  t.false(result.notes.includes(RECONNECT_NOTE));
});

test("applySchema: a PgBouncer that refuses the admin login fails the step, naming PgBouncer's endpoint", async (t) => {
  const h = harness();
  const error = await t.throwsAsync(
    applySchema(URL, ADMIN_URL, config, {
      ...h.options,
      apply: async () => RESULT,
      adminCommand: async () => {
        throw pgError("08P01", "not allowed");
      },
    }),
  );
  // 08P01 is a protocol violation: retryable as an 08 class error until the deadline, then final.
  t.regex(error!.message, /PgBouncer at localhost:6432 did not answer/);
});


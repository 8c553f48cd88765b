// Password rotation without a database: the SCRAM verifier against RFC 7677's exchange, what a
// change touches, the order of the steps and their retries (fakes), the dynamic resource's diff.
// The program under mocks: test/unit/password-rotation-program.test.ts. On a running cluster:
// test/cluster/password-rotation.test.ts.
import test from "ava";
import { createHash, createHmac } from "node:crypto";
import { scramSha256Verifier } from "../../components/rotation/scram.ts";
import { PASSWORD_NAMES, passwordProblems, planRotation, validatePasswords } from "../../components/rotation/plan.ts";
import { rotatePasswords, type RotationSteps } from "../../components/rotation/rotate.ts";
import { rotationDiff, type PasswordRotationInputs } from "../../components/password-rotation.ts";
import type { ClusterSecrets } from "../../components/render/types.ts";
import { generatePassword, parsePasswordNames } from "../../local/rotate.ts";

const OLD: ClusterSecrets = { superuser: "old-superuser-pw", replication: "old-replication-pw", rewind: "old-rewind-pw", restApi: "old-rest-api-pw", app: "old-app-password" };

test("the SCRAM-SHA-256 verifier proves RFC 7677's example exchange (user/pencil)", (t) => {
  const salt = Buffer.from("W22ZaJ0SNY7soEsUEjb6gQ==", "base64");
  const verifier = scramSha256Verifier("pencil", salt, 4096);
  const match = /^SCRAM-SHA-256\$4096:([^$]+)\$([^:]+):(.+)$/.exec(verifier);
  t.truthy(match, verifier);
  const [, saltB64, storedKeyB64, serverKeyB64] = match!;
  t.is(saltB64, "W22ZaJ0SNY7soEsUEjb6gQ==");
  const authMessage =
    "n=user,r=rOprNGfwEbeRWgbNEkqO," +
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096," +
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
  // The server's signature from ServerKey is the RFC's v=...
  const serverSignature = createHmac("sha256", Buffer.from(serverKeyB64, "base64")).update(authMessage).digest("base64");
  t.is(serverSignature, "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
  // The client's proof p=... checks against StoredKey as a server checks it.
  const proof = Buffer.from("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", "base64");
  const clientSignature = createHmac("sha256", Buffer.from(storedKeyB64, "base64")).update(authMessage).digest();
  const clientKey = Buffer.from(proof.map((byte, i) => byte ^ clientSignature[i]));
  t.is(createHash("sha256").update(clientKey).digest("base64"), storedKeyB64);
});

test("the verifier never contains the password, and a new salt each time", (t) => {
  const a = scramSha256Verifier("a-secret-password");
  const b = scramSha256Verifier("a-secret-password");
  t.false(a.includes("a-secret-password"));
  t.not(a, b);
  t.regex(a, /^SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}:[A-Za-z0-9+/=]{44}$/);
});

test("planRotation: which roles, which pg_dist_authinfo rows, whether Patroni and PgBouncer reload", (t) => {
  t.deepEqual(planRotation(OLD, OLD), { changed: [], roles: [], patroni: false, pgbouncer: false });
  const app = planRotation(OLD, { ...OLD, app: "new-app-password" });
  t.deepEqual(app, { changed: ["app"], roles: [{ name: "app", role: "app", password: "new-app-password", citusAuthinfo: true }], patroni: false, pgbouncer: true });
  const rest = planRotation(OLD, { ...OLD, restApi: "new-rest-api-pw" });
  t.deepEqual(rest, { changed: ["restApi"], roles: [], patroni: true, pgbouncer: false });
  const all = planRotation(OLD, { superuser: "n-superuser", replication: "n-replication", rewind: "n-rewind-pw", restApi: "n-rest-api", app: "n-app-pw" });
  t.deepEqual(all.changed, [...PASSWORD_NAMES]);
  t.deepEqual(all.roles.map((r) => [r.role, r.citusAuthinfo]), [["postgres", true], ["replicator", false], ["rewind_user", false], ["app", true]]);
  t.true(all.patroni && all.pgbouncer);
});

test("passwords: printable ASCII of 8 to 1024 characters; the message names the field, never the value", (t) => {
  t.deepEqual(passwordProblems("appPassword", "abcdefgh"), []);
  t.deepEqual(passwordProblems("appPassword", "short"), ["appPassword: must have 8 to 1024 characters, has 5"]);
  t.deepEqual(passwordProblems("appPassword", "pässwörd-long"), ["appPassword: only printable ASCII characters (space to ~) are allowed; character 2 is not"]);
  t.deepEqual(passwordProblems("appPassword", 42), ["appPassword: must be a string, got number"]);
  const error = t.throws(() => validatePasswords({ ...OLD, app: "tiny", rewind: "tab\there-pw" }, (n) => `${n}Password`));
  t.regex(error!.message, /appPassword: must have 8 to 1024 characters, has 4/);
  t.regex(error!.message, /rewindPassword: only printable ASCII/);
  t.false(error!.message.includes("tiny") || error!.message.includes("tab\there"));
});

/** Fake steps that record the order of calls and the passwords each got. */
function recorder(database: (url: string) => Promise<{ workers: string[] }> = async () => ({ workers: ["w1:5432"] })) {
  const calls: string[] = [];
  const steps: RotationSteps = {
    coordinatorUrl: (password) => `postgresql://postgres:${password}@rw:5000/vectors`,
    patroni: async (next, old) => void calls.push(`patroni ${old.restApi}->${next.restApi}`),
    pgbouncer: async (next, old) => void calls.push(`pgbouncer ${old.app}->${next.app}`),
    record: async (next) => void calls.push(`record ${next.app}`),
  };
  const options = {
    database: async (url: string) => {
      calls.push(`database ${url}`);
      return database(url);
    },
    sleep: async () => undefined,
    intervalMs: 1,
  };
  return { calls, steps, options };
}

test("rotatePasswords: the database first (as the old superuser), then Patroni, PgBouncer and the records", async (t) => {
  const { calls, steps, options } = recorder();
  const next = { ...OLD, app: "new-app-password", restApi: "new-rest-api-pw" };
  const result = await rotatePasswords(OLD, next, steps, options);
  t.deepEqual(calls, [
    "database postgresql://postgres:old-superuser-pw@rw:5000/vectors",
    "patroni old-rest-api-pw->new-rest-api-pw",
    "pgbouncer old-app-password->new-app-password",
    "record new-app-password",
  ]);
  t.deepEqual(result.steps, ["database", "patroni", "pgbouncer", "record"]);
  t.deepEqual(result.roles, ["app"]);
  t.deepEqual(result.workers, ["w1:5432"]);
});

test("rotatePasswords: only the steps a change needs; nothing at all when nothing changed", async (t) => {
  const rest = recorder();
  await rotatePasswords(OLD, { ...OLD, restApi: "new-rest-api-pw" }, rest.steps, rest.options);
  t.deepEqual(rest.calls, ["patroni old-rest-api-pw->new-rest-api-pw", "record old-app-password"]);
  const none = recorder();
  t.deepEqual((await rotatePasswords(OLD, OLD, none.steps, none.options)).steps, []);
  t.deepEqual(none.calls, []);
});

test("rotatePasswords: a refused old superuser password is retried once with the new one (an interrupted rotation)", async (t) => {
  let attempts = 0;
  const { calls, steps, options } = recorder(async () => {
    if (attempts++ === 0) throw Object.assign(new Error('password authentication failed for user "postgres"'), { code: "28P01" });
    return { workers: [] };
  });
  await rotatePasswords(OLD, { ...OLD, superuser: "new-superuser-pw" }, steps, options);
  t.deepEqual(calls.slice(0, 2), ["database postgresql://postgres:old-superuser-pw@rw:5000/vectors", "database postgresql://postgres:new-superuser-pw@rw:5000/vectors"]);
});

test("rotatePasswords: waits through a missing leader; any other failure stops before Patroni and PgBouncer get a password", async (t) => {
  let attempts = 0;
  const waiting = recorder(async () => {
    if (attempts++ < 2) throw Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
    return { workers: [] };
  });
  await rotatePasswords(OLD, { ...OLD, app: "new-app-password" }, waiting.steps, waiting.options);
  t.is(waiting.calls.filter((c) => c.startsWith("database")).length, 3);

  const failing = recorder(async () => {
    throw Object.assign(new Error("permission denied"), { code: "42501" });
  });
  const error = await t.throwsAsync(rotatePasswords(OLD, { ...OLD, app: "new-app-password", superuser: "new-superuser-pw" }, failing.steps, failing.options));
  t.regex(error!.message, /database step failed \(attempt 1\): 42501 permission denied/);
  t.deepEqual(failing.calls, ["database postgresql://postgres:old-superuser-pw@rw:5000/vectors"]);
});

test("rotatePasswords: invalid new passwords are refused before anything runs", async (t) => {
  const { calls, steps, options } = recorder();
  await t.throwsAsync(rotatePasswords(OLD, { ...OLD, app: "short" }, steps, options), { message: /app: must have 8 to 1024 characters/ });
  t.deepEqual(calls, []);
});

test("PasswordRotation diff: a changed password is an update, never a replacement", (t) => {
  const olds: PasswordRotationInputs = { passwords: OLD, readWriteEndpoint: "localhost:5000", database: "vectors", timeoutSeconds: 300 };
  t.deepEqual(rotationDiff(olds, olds), { changes: false, replaces: [], deleteBeforeReplace: false });
  for (const name of PASSWORD_NAMES) {
    t.deepEqual(rotationDiff(olds, { ...olds, passwords: { ...OLD, [name]: "another-password" } }), { changes: true, replaces: [], deleteBeforeReplace: false }, name);
  }
  t.true(rotationDiff(olds, { ...olds, readWriteEndpoint: "db.example:5000" }).changes);
});

test("rotate-password's names: the five passwords or all; anything else is refused naming the allowed ones", (t) => {
  t.deepEqual(parsePasswordNames(["app"]), ["app"]);
  t.deepEqual(parsePasswordNames(["app", "superuser", "app"]), ["app", "superuser"]);
  t.deepEqual(parsePasswordNames(["all"]), [...PASSWORD_NAMES]);
  t.throws(() => parsePasswordNames(["grafana"]), { message: /unknown password grafana; allowed: superuser, replication, rewind, restApi, app, all/ });
  t.throws(() => parsePasswordNames([]), { message: /needs one or more of/ });
  // Generated passwords pass the same validation as configured ones.
  const generated = generatePassword();
  t.deepEqual(passwordProblems("generated", generated), []);
  t.is(generated.length, 32);
});

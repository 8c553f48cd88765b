// The password rotation in the Pulumi program, under Pulumi's mocks: two runs that differ only by
// passwords give the PasswordRotation resource secret inputs whose diff is an update (never a
// replacement), and every process that carries a password waits for it. Then its serialized
// provider's update, in a plain Node process as Pulumi runs it (against a closed port).
import test from "ava";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import * as pulumi from "@pulumi/pulumi";
import { CONTAINER, devStackConfig, isSecretValue, key, passwordLeaks, registrations, reveal, settled, valueOf, type Registration } from "./_pulumi-harness.ts";
import { passwordRotationProvider, type PasswordRotationInputs } from "../../components/password-rotation.ts";

const ROTATION = "pulumi-nodejs:dynamic/dpc:PasswordRotation";
const FIRST = { superuserPassword: "first-superuser-pw", appPassword: "first-app-password", restApiPassword: "first-rest-api-pw" };
const SECOND = { superuserPassword: "second-superuser-pw", appPassword: "second-app-password", restApiPassword: "second-rest-api-pw" };

/** Runs the program (a fresh module instance) with these secret passwords; returns what it registered. */
async function run(tag: string, passwords: Record<string, string>): Promise<Registration[]> {
  const before = registrations.length;
  const secretConfig = Object.fromEntries(Object.entries(passwords).map(([name, value]) => [key(name), value]));
  pulumi.runtime.setAllConfig({ ...devStackConfig(), ...secretConfig }, Object.keys(secretConfig));
  const stack = await import(`../../index.ts?${tag}`);
  await valueOf(stack.appConnectionString);
  await settled();
  return registrations.slice(before);
}

let first: Registration[] = [];
let second: Registration[] = [];
test.before(async () => {
  first = await run("first", FIRST);
  second = await run("second", SECOND);
});

const rotationOf = (runs: Registration[]) => {
  const found = runs.filter((r) => r.type === ROTATION);
  if (found.length !== 1) throw new Error(`expected one ${ROTATION}, found ${found.length}`);
  return found[0];
};

test("one PasswordRotation, its passwords a secret input and a secret output", (t) => {
  const rotation = rotationOf(first);
  t.true(isSecretValue(rotation.inputs.passwords), "passwords are a secret input");
  const passwords = reveal(rotation.inputs.passwords) as Record<string, string>;
  t.is(passwords.app, FIRST.appPassword);
  t.is(passwords.superuser, FIRST.superuserPassword);
  t.deepEqual(Object.keys(passwords).sort(), ["app", "replication", "restApi", "rewind", "superuser"]);
  t.true(rotation.additionalSecretOutputs.includes("passwords"));
  t.is(rotation.inputs.readWriteEndpoint, "localhost:5000");
  t.is(rotation.inputs.database, "vectors");
  t.deepEqual(passwordLeaks([...Object.values(FIRST), ...Object.values(SECOND)]), []);
});

test("a password change is the rotation's update (old passwords from its state, new from the inputs), never its replacement", async (t) => {
  const olds = reveal(rotationOf(first).inputs.passwords) as PasswordRotationInputs["passwords"];
  const news = reveal(rotationOf(second).inputs.passwords) as PasswordRotationInputs["passwords"];
  t.is(rotationOf(second).urn, rotationOf(first).urn, "the same resource");
  const base = { readWriteEndpoint: "localhost:5000", database: "vectors", timeoutSeconds: 300 };
  const diff = await passwordRotationProvider.diff!("id", { ...base, passwords: olds }, { ...base, passwords: news });
  t.deepEqual(diff, { changes: true, replaces: [], deleteBeforeReplace: false });
  const same = await passwordRotationProvider.diff!("id", { ...base, passwords: olds }, { ...base, passwords: olds });
  t.false(same.changes);
});

test("every process that carries a password waits for the rotation (directly or through what it waits for)", (t) => {
  const byUrn = new Map(first.map((r) => [r.urn, r]));
  const rotation = rotationOf(first).urn;
  const waitsFor = (urn: string, seen = new Set<string>()): boolean => {
    if (seen.has(urn)) return false;
    seen.add(urn);
    const deps = byUrn.get(urn)?.dependencies ?? [];
    return deps.includes(rotation) || deps.some((dep) => waitsFor(dep, seen));
  };
  const carriers = first.filter((r) => r.type === CONTAINER && /-(coordinator|worker\d+)-\d+$|pgbouncer|exporter/.test(r.name));
  t.true(carriers.length >= 15 + 1 + 15, `${carriers.length} containers`);
  for (const container of carriers) t.true(waitsFor(container.urn), `${container.name} does not wait for the rotation`);
  // ... and the rotation waits for no process (it runs against the cluster the last `up` left).
  t.false(rotationOf(first).dependencies.some((urn) => byUrn.get(urn)?.type === CONTAINER));
});

test("the serialized provider's update loads rotation/step.ts (rotate.ts) in a plain Node process and rotates through the read-write endpoint", async (t) => {
  const serialized = await pulumi.runtime.serializeFunction(() => passwordRotationProvider, { allowSecrets: true });
  const requireFromString = createRequire(createRequire(import.meta.url).resolve("@pulumi/pulumi")).resolve("require-from-string");
  const dir = mkdtempSync(join(tmpdir(), "dpc-rotation-provider-"));
  try {
    const base = { readWriteEndpoint: "127.0.0.1:1", database: "vectors", timeoutSeconds: 1 };
    const olds = { ...base, passwords: { superuser: "s3cret-old-pw", replication: "replication-pw", rewind: "rewind-pw-1", restApi: "rest-api-pw", app: "app-old-pw" } };
    const news = { ...base, passwords: { ...olds.passwords, app: "app-new-pw" } };
    writeFileSync(join(dir, "provider.js"), serialized.text);
    writeFileSync(join(dir, "args.json"), JSON.stringify([olds, news]));
    const script = `
      const fs = require("fs");
      const provider = require(${JSON.stringify(requireFromString)})(fs.readFileSync(${JSON.stringify(join(dir, "provider.js"))}, "utf8")).handler();
      const [olds, news] = JSON.parse(fs.readFileSync(${JSON.stringify(join(dir, "args.json"))}, "utf8"));
      provider.update("id", olds, news).then(
        (r) => console.log(JSON.stringify({ ok: true, message: JSON.stringify(r) })),
        (e) => console.log(JSON.stringify({ ok: false, message: e.message })),
      );`;
    const { stdout } = await promisify(execFile)(process.execPath, ["-e", script], { env: { ...process.env, NODE_OPTIONS: "" }, timeout: 60_000 });
    const result = JSON.parse(stdout.trim().split("\n").at(-1)!) as { ok: boolean; message: string };
    // It got as far as connecting (tsx, rotate.ts, database.ts, pg loaded) and failed as a deployment would.
    t.false(result.ok);
    t.regex(result.message, /^rotation: the database step failed \(attempt \d+\): connect ECONNREFUSED 127\.0\.0\.1:1$/);
    t.regex(stdout, /rotation: app/);
    t.false(stdout.includes("s3cret-old-pw") || stdout.includes("app-new-pw"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("rotating the application, superuser and REST API passwords changes no input of PgBouncer's, HAProxy's or etcd's containers (PgBouncer keeps running)", (t) => {
  // Docker re-creates a container when an upload or a label changes (ForceNew): identical inputs mean
  // PgBouncer and HAProxy stay up through the rotation (PgBouncer checks the new password by
  // auth_query), and etcd's fingerprint label is keyed by no rotated password.
  for (const name of ["dpc-pgbouncer", "dpc-haproxy", "dpc-etcd-0", "dpc-etcd-1", "dpc-etcd-2"]) {
    const [before, after] = [first, second].map((runs) => runs.find((r) => r.type === CONTAINER && r.name === name));
    t.truthy(before, `${name} registered`);
    t.deepEqual(JSON.parse(JSON.stringify(after!.inputs, (_k, v) => reveal(v))), JSON.parse(JSON.stringify(before!.inputs, (_k, v) => reveal(v))), `${name}'s inputs`);
  }
  // ... while the database containers do change (their files carry the superuser's password).
  const member = (runs: Registration[]) => runs.find((r) => r.type === CONTAINER && r.name === "dpc-coordinator-0")!;
  t.notDeepEqual(JSON.stringify(member(second).inputs, (_k, v) => reveal(v)), JSON.stringify(member(first).inputs, (_k, v) => reveal(v)));
});

test("the rotation logs in through PgBouncer with the new application password: its endpoint and both pools are inputs", (t) => {
  const rotation = rotationOf(first);
  t.is(rotation.inputs.pgbouncerEndpoint, "localhost:6432");
  t.deepEqual(rotation.inputs.poolerDatabases, ["vectors", "vectors_session"]);
});

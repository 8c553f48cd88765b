// The deploy steps' triggers (components/step-trigger.ts, rotation-run.ts, schema.ts): an HMAC keyed by
// a generated secret, so a trigger read from the namespace or the state lets nobody test guessed
// passwords offline, while equal inputs still give an equal trigger (a second `up` runs nothing).
import test from "ava";
import { createHash, createHmac } from "node:crypto";
import { keyedTrigger, STEP_TRIGGER_KEY_MIN_LENGTH } from "../../components/step-trigger.ts";
import { rotationTrigger } from "../../components/rotation-run.ts";
import { schemaTrigger } from "../../components/schema.ts";
import type { SchemaStepInputs } from "../../components/schema-apply.ts";
import { parseClusterConfig } from "../../components/spec.ts";

const KEY = "k".repeat(32);
const OTHER_KEY = "o".repeat(32);
const secrets = { superuser: "superuser-pw-1", replication: "replication-pw", rewind: "rewind-pw-1", restApi: "rest-api-pw-1", app: "app-password-1" };

test("keyedTrigger: HMAC-SHA256 over the JSON parts, hex; equal parts equal, any change or another key different", (t) => {
  t.is(keyedTrigger(KEY, ["a", 1]), createHmac("sha256", KEY).update(JSON.stringify(["a", 1])).digest("hex"));
  t.regex(keyedTrigger(KEY, ["a"]), /^[0-9a-f]{64}$/);
  t.is(keyedTrigger(KEY, { x: [1, 2] }), keyedTrigger(KEY, { x: [1, 2] }));
  t.not(keyedTrigger(KEY, ["a"]), keyedTrigger(KEY, ["b"]));
  t.not(keyedTrigger(KEY, ["a"]), keyedTrigger(OTHER_KEY, ["a"]));
});

test("keyedTrigger refuses a missing or short key (a guessable key would make the digest guessable again)", (t) => {
  for (const key of ["", "short", "x".repeat(STEP_TRIGGER_KEY_MIN_LENGTH - 1), undefined as unknown as string]) {
    t.throws(() => keyedTrigger(key, ["a"]), { message: /at least 16 characters/ });
  }
  t.notThrows(() => keyedTrigger("x".repeat(STEP_TRIGGER_KEY_MIN_LENGTH), ["a"]));
});

test("rotationTrigger: stable for the same passwords, new for a new one, and not the unkeyed digest of them", (t) => {
  const next = { ...secrets, app: "app-password-2" };
  t.is(rotationTrigger(KEY, secrets, next), rotationTrigger(KEY, secrets, next));
  t.not(rotationTrigger(KEY, secrets, next), rotationTrigger(KEY, secrets, secrets));
  t.not(rotationTrigger(KEY, secrets, next), rotationTrigger(OTHER_KEY, secrets, next));
  // Someone who reads the trigger and guesses the passwords cannot check the guess without the key.
  const plain = createHash("sha256").update(JSON.stringify(["rotation", secrets, next])).digest("hex");
  t.not(rotationTrigger(KEY, secrets, next), plain);
  t.false(rotationTrigger(KEY, secrets, next).includes("app-password"));
});

test("schemaTrigger: keyed; a changed password or migration fingerprint changes it", (t) => {
  const config = parseClusterConfig({});
  const inputs: SchemaStepInputs = {
    connectionString: "postgresql://postgres:superuser-pw-1@dpc-haproxy:5000/vectors",
    poolerAdminConnectionString: "postgresql://pgbouncer_admin:admin-pw-123@dpc-pgbouncer:6432/pgbouncer",
    appPassword: "app-password-1",
    config,
    migrationsFingerprint: "f".repeat(64),
    timeoutSeconds: 600,
  };
  t.is(schemaTrigger(KEY, inputs), schemaTrigger(KEY, { ...inputs }));
  t.not(schemaTrigger(KEY, inputs), schemaTrigger(KEY, { ...inputs, appPassword: "app-password-2" }));
  t.not(schemaTrigger(KEY, inputs), schemaTrigger(KEY, { ...inputs, migrationsFingerprint: "e".repeat(64) }));
  t.not(schemaTrigger(KEY, inputs), schemaTrigger(OTHER_KEY, inputs));
});

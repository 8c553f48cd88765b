// Password rotation on Kubernetes, read from the objects the program registers under mocks: the
// record (the PasswordRotation resource in its in-cluster mode, which dials nothing) and the rotation
// Job of the deploy-steps image, which every object carrying a password waits for (the Patroni
// groups' Secrets and StatefulSets, the router, etcd, monitoring, the other Jobs) while it waits for
// no cluster object; its trigger the same for the same passwords (a second `up` runs nothing) and
// new for new ones, its input then the previous and the new passwords, and the rollout Job given the
// previous REST credentials for the pods not yet replaced. Serial: later tests run the
// program again.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import test from "ava";
import * as pulumi from "@pulumi/pulumi";
import { ROTATION_TYPE, generatedPasswords, mockRotation, plainStrings, registrations, reveal, settled, valueOf, type Registration } from "./_pulumi-harness.ts";
import { APP_PASSWORD, DATABASE_GROUPS, STEPS_IMAGE, TYPES, container, k8sName, loadKubernetesStack, podSpec, spec } from "./_kubernetes-stack.ts";
import { ROTATION_STEP_DEADLINE_SECONDS, rotationTrigger } from "../../components/rotation-run.ts";
import { passwordRotationProvider } from "../../components/password-rotation.ts";
import type { RotationStepInputs } from "../../components/rotation/step.ts";
import type { RolloutStepInputs } from "../../components/rollout/step.ts";

let firstRun: Registration[] = [];
test.before(async () => {
  await loadKubernetesStack();
  firstRun = [...registrations];
});

const find = (runs: Registration[], type: string, name: string) => {
  const found = runs.find((r) => r.type === type && k8sName(r) === name);
  if (!found) throw new Error(`no ${type} ${name}`);
  return found;
};
const stepInput = (runs: Registration[], name: string) =>
  JSON.parse((reveal(find(runs, TYPES.secret, `${name}-input`).inputs.stringData) as Record<string, string>)["input.json"]);
/** The generated trigger key as the mocks name it (RandomPassword results are `generated-<name>`). */
const TRIGGER_KEY = "generated-dpc-step-trigger-key";
const trigger = (runs: Registration[]) => spec(find(runs, TYPES.job, "dpc-rotation")).template.metadata.annotations["dpc/trigger"] as string;

/** Whether `urn`'s registration waits for `target` (directly, or through what it waits for). */
function waitsFor(runs: Registration[], urn: string, target: string): boolean {
  const byUrn = new Map(runs.map((r) => [r.urn, r]));
  const seen = new Set<string>();
  const visit = (u: string): boolean => {
    if (seen.has(u)) return false;
    seen.add(u);
    const r = byUrn.get(u);
    if (!r) return false;
    return r.dependencies.includes(target) || r.dependencies.some(visit) || (r.parent !== "" && visit(r.parent));
  };
  return visit(urn);
}

async function run(tag: string, extra: Record<string, string>): Promise<Registration[]> {
  const before = registrations.length;
  const again = await loadKubernetesStack(extra, tag);
  await valueOf(again.appConnectionString);
  await settled();
  return registrations.slice(before);
}

test.serial("a record that dials nothing, and a Job of the deploy-steps image: `rotation`, a deploy step's account, old = new on the first `up`", (t) => {
  const record = firstRun.find((r) => r.type === ROTATION_TYPE)!;
  t.is(record.name, "dpc-rotation-record");
  t.true((reveal(record.inputs) as { inCluster?: boolean }).inCluster);
  const job = find(firstRun, TYPES.job, "dpc-rotation");
  t.is(container(job).image, STEPS_IMAGE);
  t.deepEqual(container(job).args, ["rotation"]);
  t.is(podSpec(job).serviceAccountName, "dpc-deploy-steps", "SQL only: the schema's account, no pod rights");
  t.is(spec(job).template.metadata.labels["dpc/kind"], "deploy-step");
  t.is(spec(job).activeDeadlineSeconds, ROTATION_STEP_DEADLINE_SECONDS);
  const input = stepInput(firstRun, "dpc-rotation") as RotationStepInputs;
  t.deepEqual(input.old, input.next, "no previous passwords: nothing to rotate, nothing dialled");
  t.is(input.next.app, APP_PASSWORD);
  t.is(input.readWriteEndpoint, "dpc-haproxy.dpc.svc.cluster.local:5000");
  t.is(input.database, "vectors");
  t.regex(input.ca ?? "", /^-----BEGIN CERTIFICATE-----/);
  t.is(trigger(firstRun), rotationTrigger(TRIGGER_KEY, input.old, input.next));
  // Step 3 at each PgBouncer pod: the pods' headless Service (ready pods only) and the Service's name
  // for the certificate; both application databases (transaction and session pools).
  t.is(input.pgbouncerEndpoint, "dpc-pgbouncer.dpc.svc.cluster.local:6432");
  t.is(input.pgbouncerPods, "dpc-pgbouncer-pods.dpc.svc.cluster.local");
  t.is(input.poolerDatabases?.length, 2);
  const pods = find(firstRun, TYPES.service, "dpc-pgbouncer-pods");
  t.like(spec(pods), { clusterIP: "None", publishNotReadyAddresses: false });
  t.deepEqual(spec(pods).selector, spec(find(firstRun, TYPES.deployment, "dpc-pgbouncer")).selector.matchLabels);
  t.deepEqual(spec(pods).ports.map((p: { port: number }) => p.port), [6432]);
  // The passwords are in the Secret (a Pulumi secret) only.
  t.deepEqual(plainStrings(find(firstRun, TYPES.secret, "dpc-rotation-input").inputs.stringData), []);
  const text = JSON.stringify(reveal(job.inputs));
  t.false([APP_PASSWORD, ...generatedPasswords].some((p) => text.includes(p)));
});

test.serial("order: everything that carries a password waits for the rotation Job; the Job waits for nothing of the cluster", (t) => {
  const job = find(firstRun, TYPES.job, "dpc-rotation");
  const carriers = [
    ...DATABASE_GROUPS.flatMap((g) => [find(firstRun, TYPES.secret, `${g}-files`), find(firstRun, TYPES.statefulSet, g)]),
    find(firstRun, TYPES.secret, "dpc-pgbouncer-files"),
    find(firstRun, TYPES.deployment, "dpc-pgbouncer"),
    find(firstRun, TYPES.deployment, "dpc-haproxy"),
    find(firstRun, TYPES.statefulSet, "dpc-etcd"),
    // The steps' input Secrets are read by their Jobs only, which run after it.
    ...["dpc-rollout", "dpc-schema", "dpc-benchmark", "dpc-scaling"].map((name) => find(firstRun, TYPES.job, name)),
  ];
  for (const carrier of carriers) t.true(waitsFor(firstRun, carrier.urn, job.urn), `${carrier.type} ${k8sName(carrier)} waits for the rotation Job`);
  const clusterObjects = firstRun.filter((r) => [TYPES.statefulSet, TYPES.deployment].includes(r.type as never) || (r.type === TYPES.secret && k8sName(r).endsWith("-files")));
  for (const object of clusterObjects) t.false(waitsFor(firstRun, job.urn, object.urn), `the rotation Job does not wait for ${k8sName(object)}`);
  t.true(job.dependencies.includes(firstRun.find((r) => r.type === ROTATION_TYPE)!.urn), "the Job runs after the record");
});

test.serial("a second `up` with nothing changed registers the same Job; new passwords a new one, with the previous ones as `old`, and the rollout gets the previous credentials", async (t) => {
  const same = await run("same", {});
  t.is(trigger(same), trigger(firstRun));
  t.deepEqual(find(same, TYPES.job, "dpc-rotation").inputs, find(firstRun, TYPES.job, "dpc-rotation").inputs, "identical Job inputs: no replacement, no run");
  t.deepEqual(stepInput(same, "dpc-rollout").previous, undefined, "no rotation: no previous credentials");

  // The next `up` with a new superuser and app password: the record's update returned the old ones.
  const old = (stepInput(firstRun, "dpc-rotation") as RotationStepInputs).next;
  mockRotation.previous = { ...old };
  try {
    const rotated = await run("rotated", { superuserPassword: "a-new-superuser-pw", appPassword: "a-new-app-password", restApiPassword: "a-new-rest-api-pw" });
    const input = stepInput(rotated, "dpc-rotation") as RotationStepInputs;
    t.deepEqual(input.old, old);
    t.deepEqual(input.next, { ...old, superuser: "a-new-superuser-pw", app: "a-new-app-password", restApi: "a-new-rest-api-pw" });
    t.not(trigger(rotated), trigger(firstRun), "a new Job: the rotation runs");
    t.is(trigger(rotated), rotationTrigger(TRIGGER_KEY, input.old, input.next));
    // An HMAC keyed by a generated secret: not the plain digest anyone could recompute from guesses.
    t.not(trigger(rotated), createHash("sha256").update(JSON.stringify(["rotation", input.old, input.next])).digest("hex"));
    t.not(trigger(rotated), rotationTrigger("another-key-of-32-characters-xx", input.old, input.next));
    // The files change, so the rollout replaces the Patroni pods; until then they check the old passwords.
    const rollout = stepInput(rotated, "dpc-rollout") as RolloutStepInputs;
    // Only the REST API's: PgBouncer's admin credential is generated, untouched by a rotation.
    t.deepEqual(rollout.previous, { restAuth: `patroni:${old.restApi}` });
    t.is(rollout.poolerAdminUrl, (stepInput(firstRun, "dpc-rollout") as RolloutStepInputs).poolerAdminUrl);
    t.regex(rollout.poolerAdminUrl, /^postgresql:\/\/pgbouncer_admin:/);
    t.not(spec(find(rotated, TYPES.statefulSet, "dpc-coordinator")).template.metadata.annotations["dpc/files-sha256"], spec(find(firstRun, TYPES.statefulSet, "dpc-coordinator")).template.metadata.annotations["dpc/files-sha256"]);
  } finally {
    delete mockRotation.previous;
  }
});

test.serial("the record's update in its in-cluster mode (serialized, in a plain Node process) records the previous passwords and dials nothing", async (t) => {
  const serialized = await pulumi.runtime.serializeFunction(() => passwordRotationProvider, { allowSecrets: true });
  const requireFromString = createRequire(createRequire(import.meta.url).resolve("@pulumi/pulumi")).resolve("require-from-string");
  const dir = mkdtempSync(join(tmpdir(), "dpc-rotation-record-"));
  try {
    // An endpoint nothing listens on: a dial would fail the update.
    const base = { readWriteEndpoint: "127.0.0.1:1", database: "vectors", timeoutSeconds: 1, inCluster: true };
    const olds = { ...base, passwords: { superuser: "s3cret-old-pw", replication: "replication-pw", rewind: "rewind-pw-1", restApi: "rest-api-pw", app: "app-old-pw" } };
    const news = { ...base, passwords: { ...olds.passwords, app: "app-new-pw", restApi: "rest-api-pw2" } };
    writeFileSync(join(dir, "provider.js"), serialized.text);
    writeFileSync(join(dir, "args.json"), JSON.stringify([olds, news]));
    const script = `
      const fs = require("fs");
      const provider = require(${JSON.stringify(requireFromString)})(fs.readFileSync(${JSON.stringify(join(dir, "provider.js"))}, "utf8")).handler();
      const [olds, news] = JSON.parse(fs.readFileSync(${JSON.stringify(join(dir, "args.json"))}, "utf8"));
      provider.update("id", olds, news).then((r) => console.log(JSON.stringify(r)), (e) => console.log(JSON.stringify({ error: e.message })));`;
    const { stdout } = await promisify(execFile)(process.execPath, ["-e", script], { env: { ...process.env, NODE_OPTIONS: "" }, timeout: 60_000 });
    const result = JSON.parse(stdout.trim().split("\n").at(-1)!) as { outs?: { previous: unknown; rotated: string[]; passwords: unknown } };
    t.deepEqual(result.outs?.previous, olds.passwords);
    t.deepEqual(result.outs?.rotated, ["restApi", "app"]);
    t.deepEqual(result.outs?.passwords, news.passwords);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

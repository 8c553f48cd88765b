// Data is never deleted by accident (docker, the dev stack): the data volumes are registered with
// retainOnDelete, and the DataIdentity record comes first, every process depending on it, with a
// check that refuses a change of clusterName, platform, namespace or PostgreSQL major.
import test from "ava";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import * as pulumi from "@pulumi/pulumi";
import { CONTAINER, byType, containers, devStackConfig, registrations, settled, valueOf } from "./_pulumi-harness.ts";
import { optionsOf } from "./_resource-options.ts";
import { DATA_IDENTITY_NAME, dataIdentity, dataIdentityProvider, identityChanges } from "../../components/data-identity.ts";
import { parseClusterConfig } from "../../components/spec.ts";

const IDENTITY_TYPE = "pulumi-nodejs:dynamic/dpc:DataIdentity";
const VOLUME = "docker:index/volume:Volume";

test.before(async () => {
  pulumi.runtime.setAllConfig(devStackConfig());
  const stack = await import("../../index.ts");
  await valueOf(stack.appConnectionString);
  await settled();
});

test("every data volume is retained when Pulumi deletes it (retainDataOnDestroy defaults to true)", (t) => {
  const volumes = byType(VOLUME);
  // 15 PostgreSQL nodes, 3 etcd members, Prometheus and Grafana.
  t.true(volumes.length >= 18);
  for (const volume of volumes) {
    t.true(optionsOf(volume.urn).retainOnDelete, volume.name);
    t.false(optionsOf(volume.urn).protect, volume.name);
  }
  t.truthy(volumes.find((v) => v.inputs.name === "dpc-coordinator-0-data"));
  // Containers are not retained: they hold no data.
  for (const container of containers()) t.false(optionsOf(container.urn).retainOnDelete, container.name);
});

test("the DataIdentity is registered at the stack's root under a fixed name, with the data's identity", (t) => {
  const [identity] = byType(IDENTITY_TYPE);
  t.is(byType(IDENTITY_TYPE).length, 1);
  t.is(identity.name, DATA_IDENTITY_NAME);
  // Not under the Cluster component: its URN does not change with the cluster's name.
  t.notRegex(identity.urn, /Cluster/);
  t.like(identity.inputs, { platform: "docker", clusterName: "dpc", kubernetesNamespace: "", postgresMajor: 17 });
});

test("every container waits for the DataIdentity: a refused check stops the update before any container changes", (t) => {
  const identity = byType(IDENTITY_TYPE)[0].urn;
  const byUrn = new Map(registrations.map((r) => [r.urn, r]));
  // Directly (etcd, the Patroni groups, monitoring) or through what it waits for (HAProxy through the
  // coordinator group, PgBouncer through HAProxy).
  const waitsFor = (urn: string, seen = new Set<string>()): boolean => {
    if (seen.has(urn)) return false;
    seen.add(urn);
    const deps = byUrn.get(urn)?.dependencies ?? [];
    return deps.includes(identity) || deps.some((d) => waitsFor(d, seen));
  };
  for (const container of containers()) t.true(waitsFor(container.urn), `${container.name} does not wait for the DataIdentity`);
  t.true(registrations.filter((r) => r.type === CONTAINER && /-(coordinator|worker\d+)-\d+$/.test(r.name)).every((c) => c.dependencies.includes(identity)));
});

const deployed = dataIdentity(parseClusterConfig({}));

test("identityChanges: nothing deployed yet, or the same identity, passes", (t) => {
  t.deepEqual(identityChanges({}, deployed), []);
  t.deepEqual(identityChanges(undefined, deployed), []);
  t.deepEqual(identityChanges(deployed, { ...deployed }), []);
});

test("identityChanges: a new clusterName, platform, namespace or major is refused, naming both values and the way out", (t) => {
  const [rename] = identityChanges(deployed, { ...deployed, clusterName: "prod" });
  t.is(rename.property, "clusterName");
  t.regex(rename.reason, /^clusterName: deployed "dpc", now "prod"; refused: /);
  t.regex(rename.reason, /pulumi destroy/);
  t.regex(rename.reason, /retainDataOnDestroy/);
  t.deepEqual(
    identityChanges(deployed, { platform: "kubernetes", clusterName: "dpc", kubernetesNamespace: "dpc", postgresMajor: 18, workerGroups: 0 }).map((f) => f.property),
    ["platform", "kubernetesNamespace", "postgresMajor"],
  );
  t.regex(identityChanges(deployed, { ...deployed, postgresMajor: 18 })[0].reason, /pg_upgrade/);
});

test("workerGroups: changeable on docker and on kubernetes (up rebalances or drains: the scaling step)", (t) => {
  const docker = (groups: number) => dataIdentity(parseClusterConfig({ workerGroups: String(groups) }));
  t.deepEqual(identityChanges(docker(6), docker(3)), []);
  const kubernetes = (groups: number) =>
    dataIdentity(parseClusterConfig({ platform: "kubernetes", workerGroups: String(groups), databaseImage: "registry.example/dpc-db:1", deployStepsImage: "registry.example/dpc-steps:1" }));
  t.deepEqual(identityChanges(kubernetes(6), kubernetes(3)), []);
  t.is(kubernetes(6).workerGroups, 0, "no part of the identity: a record needs no update when it changes");
  // A record of the program before the scaling step (the kubernetes count in it) refuses nothing.
  t.deepEqual(identityChanges({ ...kubernetes(6), workerGroups: 6 }, kubernetes(3)), []);
});

test("the provider's check returns the failures and keeps the inputs", async (t) => {
  const news = { ...deployed, clusterName: "other" };
  const result = await dataIdentityProvider.check!(deployed, news);
  t.is(result.inputs, news);
  t.deepEqual(result.failures!.map((f) => f.property), ["clusterName"]);
  t.deepEqual((await dataIdentityProvider.check!({}, news)).failures, []);
});

test("the serialized provider's check works in a plain Node process (as Pulumi's dynamic provider host runs it)", async (t) => {
  const serialized = await pulumi.runtime.serializeFunction(() => dataIdentityProvider, { allowSecrets: false });
  const requireFromString = createRequire(createRequire(import.meta.url).resolve("@pulumi/pulumi")).resolve("require-from-string");
  const dir = mkdtempSync(join(tmpdir(), "dpc-identity-"));
  try {
    writeFileSync(join(dir, "provider.js"), serialized.text);
    const script = `
      const fs = require("fs");
      const provider = require(${JSON.stringify(requireFromString)})(fs.readFileSync(${JSON.stringify(join(dir, "provider.js"))}, "utf8")).handler();
      provider.check(${JSON.stringify(deployed)}, ${JSON.stringify({ ...deployed, clusterName: "other" })}).then((r) => console.log(JSON.stringify(r.failures)));`;
    const { stdout } = await promisify(execFile)(process.execPath, ["-e", script], { env: { ...process.env, NODE_OPTIONS: "" }, timeout: 60_000 });
    const failures = JSON.parse(stdout.trim()) as { property: string; reason: string }[];
    t.deepEqual(failures.map((f) => f.property), ["clusterName"]);
    t.regex(failures[0].reason, /deployed "dpc", now "other"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

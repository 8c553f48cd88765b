// The Schema's and the BenchmarkRun's dynamic providers: when they ask for an update, and that their
// serialized form works where Pulumi runs it, a plain Node process without tsx (as the engine's
// `pulumi-resource-pulumi-nodejs` host does), loading the TypeScript modules it names. No database:
// the providers are pointed at a closed port (127.0.0.1:1) and must fail the way a deployment would.
import test from "ava";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import * as pulumi from "@pulumi/pulumi";
import { schemaProvider } from "../../components/schema.ts";
import { benchmarkProvider } from "../../components/benchmark-run.ts";
import { postgresConfigProvider } from "../../components/postgres-config.ts";
import { certificatesProvider } from "../../components/certificates.ts";
import { parseClusterConfig } from "../../components/spec.ts";
import { benchmarkDataset } from "../../components/benchmark-step.ts";

const run = promisify(execFile);
const config = parseClusterConfig({});
const CLOSED_PORT_URL = "postgresql://postgres:s3cret-pw@127.0.0.1:1/vectors";

test("Schema diff: a new migration, another endpoint or database re-applies; other config does not", async (t) => {
  const olds = { connectionString: CLOSED_PORT_URL, config, migrationsFingerprint: "a", timeoutSeconds: 600 };
  const diff = (news: Partial<typeof olds>) => schemaProvider.diff!("id", olds, { ...olds, ...news });
  t.deepEqual(await diff({}), { changes: false });
  t.deepEqual(await diff({ config: parseClusterConfig({ poolSize: 40 }) }), { changes: false });
  t.deepEqual(await diff({ migrationsFingerprint: "b" }), { changes: true });
  t.deepEqual(await diff({ connectionString: "postgresql://postgres:other@127.0.0.1:1/vectors" }), { changes: true });
  t.deepEqual(await diff({ config: parseClusterConfig({ database: "other" }) }), { changes: true });
});

test("BenchmarkRun diff: a new schema version, mode, run id or data set runs again; a new password does not", async (t) => {
  const olds = { url: CLOSED_PORT_URL, mode: "quick", schemaVersion: "008_x", runId: "", dataset: benchmarkDataset(config) };
  const diff = (news: Partial<typeof olds>) => benchmarkProvider.diff!("id", olds, { ...olds, ...news });
  t.deepEqual(await diff({}), { changes: false });
  t.deepEqual(await diff({ url: "postgresql://app:rotated@127.0.0.1:1/vectors" }), { changes: false });
  for (const change of [{ schemaVersion: "009_y" }, { mode: "full" }, { runId: "2" }, { dataset: { ...olds.dataset, dimensions: 768 } }]) {
    t.deepEqual(await diff(change), { changes: true }, JSON.stringify(change));
  }
});

/** Serializes `provider` as `pulumi.dynamic.Resource` does, then calls `create(inputs)` in a plain Node process. */
async function createInPlainNode(provider: pulumi.dynamic.ResourceProvider, inputs: unknown): Promise<{ ok: boolean; message: string; stdout: string }> {
  const serialized = await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: true });
  const requireFromString = createRequire(createRequire(import.meta.url).resolve("@pulumi/pulumi")).resolve("require-from-string");
  const dir = mkdtempSync(join(tmpdir(), "dpc-provider-"));
  try {
    writeFileSync(join(dir, "provider.js"), serialized.text);
    writeFileSync(join(dir, "inputs.json"), JSON.stringify(inputs));
    // What the dynamic provider host does: require-from-string, then handler() gives the provider.
    const script = `
      const fs = require("fs");
      const provider = require(${JSON.stringify(requireFromString)})(fs.readFileSync(${JSON.stringify(join(dir, "provider.js"))}, "utf8")).handler();
      provider.create(JSON.parse(fs.readFileSync(${JSON.stringify(join(dir, "inputs.json"))}, "utf8"))).then(
        (r) => console.log(JSON.stringify({ ok: true, message: JSON.stringify(r) })),
        (e) => console.log(JSON.stringify({ ok: false, message: e.message })),
      );`;
    const { stdout } = await run(process.execPath, ["-e", script], { env: { ...process.env, NODE_OPTIONS: "" }, timeout: 60_000 });
    const lines = stdout.trim().split("\n");
    return { ...JSON.parse(lines.at(-1)!), stdout };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("the serialized Schema provider loads schema-apply.ts and sql/ in a plain Node process", async (t) => {
  const result = await createInPlainNode(schemaProvider, { connectionString: CLOSED_PORT_URL, config, migrationsFingerprint: "a", timeoutSeconds: 1 });
  // It got as far as connecting: the module chain (tsx, schema-apply.ts, sql/apply.ts, pg) loaded.
  t.false(result.ok);
  t.regex(result.message, /^schema: no leader answered at 127\.0\.0\.1:1 within 1 s \(1 attempt\); last error: connect ECONNREFUSED 127\.0\.0\.1:1$/);
  t.false(result.stdout.includes("s3cret-pw"));
});

test("the serialized BenchmarkRun provider loads benchmark-step.ts and the suite in a plain Node process", async (t) => {
  const result = await createInPlainNode(benchmarkProvider, {
    url: CLOSED_PORT_URL.replace("postgres:", "app:"),
    mode: "quick",
    schemaVersion: "008_x",
    runId: "",
    dataset: benchmarkDataset(config),
  });
  t.false(result.ok);
  t.is(result.message, "benchmark: the quick run against 127.0.0.1:1 failed: connect ECONNREFUSED 127.0.0.1:1");
  t.regex(result.stdout, /benchmark: quick run against 127\.0\.0\.1:1 after schema 008_x/);
  t.false(result.stdout.includes("s3cret-pw"));
});

test("the serialized PostgresConfig provider loads the rollout (components/rollout/) in a plain Node process", async (t) => {
  const result = await createInPlainNode(postgresConfigProvider, {
    groups: [{ group: 0, members: [{ name: "dpc-coordinator-0", restUrl: "http://127.0.0.1:1" }] }],
    restAuth: "dpc_rest:s3cret-pw",
    poolerAdminUrl: CLOSED_PORT_URL.replace("/vectors", "/pgbouncer"),
    readWriteUrl: CLOSED_PORT_URL,
    parameters: { work_mem: "8MB" },
    stepTimeoutSeconds: 1,
  });
  // It got as far as asking Patroni for the group's dynamic configuration.
  t.false(result.ok);
  t.regex(result.message, /^rollout: no member of group 0 answered \/config: /);
  t.false(result.stdout.includes("s3cret-pw"));
});

test("PostgresConfig diff: other parameters or members apply again; credentials and timeouts alone do not", async (t) => {
  const olds = { groups: [{ group: 0, members: [{ name: "m", restUrl: "http://a:8008" }] }], restAuth: "u:p", poolerAdminUrl: "x", readWriteUrl: "y", parameters: { work_mem: "4MB" } as Record<string, string>, stepTimeoutSeconds: 300 };
  const diff = async (news: Partial<typeof olds>) => (await postgresConfigProvider.diff!("id", olds, { ...olds, ...news })).changes;
  t.true(await diff({ parameters: { work_mem: "8MB" } }));
  t.true(await diff({ parameters: {} }));
  t.true(await diff({ groups: [{ group: 0, members: [{ name: "m", restUrl: "http://b:8008" }] }] }));
  t.false(await diff({ restAuth: "u:q", poolerAdminUrl: "z", stepTimeoutSeconds: 10 }));
});

test("the serialized ClusterCertificates provider loads components/tls in a plain Node process and issues the plan", async (t) => {
  const plan = [
    { id: "dpc-coordinator-0", commonName: "dpc-coordinator-0", dnsNames: ["dpc-coordinator-0"], ipAddresses: [], server: true, client: true },
    { id: "operator", commonName: "operator", dnsNames: [], ipAddresses: [], server: false, client: true },
  ];
  const result = await createInPlainNode(certificatesProvider, { name: "dpc", plan });
  t.true(result.ok, result.message);
  const { id, outs } = JSON.parse(result.message) as { id: string; outs: { ca: string; caKey: string; certificates: Record<string, { cert: string }> } };
  t.is(id, "dpc-certificates");
  t.regex(outs.ca, /^-----BEGIN CERTIFICATE-----/);
  t.deepEqual(Object.keys(outs.certificates), ["dpc-coordinator-0", "operator"]);
  // Nothing printed: no key in the provider's log.
  t.false(result.stdout.split("\n").slice(0, -2).join("\n").includes("PRIVATE KEY"));
});

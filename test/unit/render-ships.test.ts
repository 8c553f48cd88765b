// Nothing ships without being rendered: what `npm run render -- --stack dev` writes is exactly what
// the program delivers for the dev stack under Pulumi's mocks (_pulumi-harness.ts): every
// container's uploads (path, content, mode), etcd's command line, and the migrations the Schema step
// applies. The passwords are the render's placeholders on both sides (secret stack config here).
import test from "ava";
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import * as pulumi from "@pulumi/pulumi";
import { byType, containers, devStackConfig, generatedPasswords, key, reveal, settled, valueOf, SCHEMA_TYPE } from "./_pulumi-harness.ts";
import type { ClusterConfig } from "../../components/spec.ts";
import { GRAFANA_ADMIN_PASSWORD_KEY, MONITOR_PASSWORD_KEY, PASSWORD_CONFIG_KEYS } from "../../components/stack-config.ts";
import { storedCertificates } from "../support/mock-certificates.ts";
import { renderMigrations } from "../../sql/migrations.ts";
import { GENERATED_PLACEHOLDERS } from "../../components/shipped-files.ts";

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, "../..");

type Upload = { file: string; content: string; permissions: string };
interface Delivered {
  content: string;
  mode: number;
}

/** `<container>/<path under /etc/dpc>` -> what it receives; etcd's command line as `<member>/etcd.args`. */
const delivered = new Map<string, Delivered>();
/** `<dir>/<path>` -> what `npm run render` wrote. */
const rendered = new Map<string, Delivered>();
let outDir = "";
let schemaStep = "";
let registeredConfig: ClusterConfig;

async function readTree(dir: string, prefix = ""): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) await readTree(full, relative);
    else rendered.set(relative, { content: await readFile(full, "utf8"), mode: (await stat(full)).mode & 0o777 });
  }
}

// PgBouncer's own credentials have no config key: the mocks generate them (`generated-<name>`), the
// render writes GENERATED_PLACEHOLDERS; mapped here so that the files compare.
const GENERATED_POOLER = { "generated-dpc-pooler-lookup-password": GENERATED_PLACEHOLDERS.poolerLookup, "generated-dpc-pooler-admin-password": GENERATED_PLACEHOLDERS.poolerAdmin };
const generatedToPlaceholders = (content: string) => Object.entries(GENERATED_POOLER).reduce((text, [value, placeholder]) => text.split(value).join(placeholder), content);

test.before(async () => {
  // Every password set, as the placeholders the render writes, so that both sides hold the same text.
  const secretKeys = [...Object.values(PASSWORD_CONFIG_KEYS), GRAFANA_ADMIN_PASSWORD_KEY, MONITOR_PASSWORD_KEY];
  pulumi.runtime.setAllConfig(
    { ...devStackConfig(), ...Object.fromEntries(secretKeys.map((k) => [key(k), `PLACEHOLDER-${k}`])) },
    secretKeys.map(key),
  );
  const stack = await import("../../index.ts");
  await valueOf(stack.appConnectionString);
  await settled();

  // The certificates are issued at deploy time; the render writes a placeholder per file. Map each
  // delivered certificate and key back to the placeholder of its id (what must match is which file
  // gets which certificate).
  const issued = storedCertificates("dpc-certificates-issued");
  if (!issued) throw new Error("no certificates were issued under the mocks");
  const placeholder = new Map<string, string>([[issued.ca, "PLACEHOLDER-caCertificate\n"]]);
  for (const [id, c] of Object.entries(issued.certificates)) {
    placeholder.set(c.cert, `PLACEHOLDER-certificate-${id}\n# names: ${[...JSON.parse(c.issuedFor).dnsNames, ...JSON.parse(c.issuedFor).ipAddresses].join(", ") || "(client only)"}\n`);
    placeholder.set(c.key, `PLACEHOLDER-key-${id}\n`);
  }
  for (const container of containers()) {
    for (const upload of (reveal(container.inputs.uploads) ?? []) as Upload[]) {
      delivered.set(`${container.name}/${upload.file.replace(/^\/etc\/dpc\//, "")}`, {
        content: generatedToPlaceholders(placeholder.get(upload.content) ?? upload.content),
        mode: parseInt(upload.permissions, 8),
      });
    }
    const [program, ...args] = container.inputs.entrypoints as string[];
    if (program.endsWith("/etcd")) delivered.set(`${container.name}/etcd.args`, { content: args.join("\n") + "\n", mode: 0o644 });
  }
  // The Schema step applies renderMigrations(config, context read from the database); shipped: Citus, pgvector's `hnsw`.
  const [schema] = byType("dpc:index:Schema");
  schemaStep = schema.name;
  registeredConfig = byType(SCHEMA_TYPE)[0].inputs.config as ClusterConfig;
  for (const migration of renderMigrations(registeredConfig, { citus: true, hnswAccessMethod: "hnsw" })) {
    delivered.set(`${schemaStep}/${migration.id}.sql`, { content: migration.sql, mode: 0o644 });
  }

  outDir = await mkdtemp(path.join(tmpdir(), "render-ships-"));
  await run(process.execPath, ["--import=tsx", "scripts/render.ts", "--stack", "dev", "--out", outDir], { cwd: ROOT });
  await readTree(outDir);
});

/** Files the render writes that no container receives: its own README and the alert rules' unit tests. */
const RENDER_ONLY = ["README.txt", "promtool/alert-tests.yml"];

test("the rendered files are exactly the delivered ones, plus the README and the alert tests", (t) => {
  t.true(delivered.size > 90, `only ${delivered.size} delivered files recorded`);
  for (const extra of RENDER_ONLY) t.true(rendered.has(extra), `${extra} not rendered`);
  const deliveredNotRendered = [...delivered.keys()].filter((file) => !rendered.has(file)).sort();
  const renderedNotDelivered = [...rendered.keys()].filter((file) => !delivered.has(file) && !RENDER_ONLY.includes(file)).sort();
  t.deepEqual({ deliveredNotRendered, renderedNotDelivered }, { deliveredNotRendered: [], renderedNotDelivered: [] });
});

test("monitoring files and migrations are among them, each in its container's or step's folder", (t) => {
  for (const file of [
    "dpc-prometheus/prometheus/prometheus.yml",
    "dpc-prometheus/prometheus/alerts.yml",
    "dpc-coordinator-0-exporter/postgres-exporter/queries.yaml",
    "dpc-grafana/grafana/provisioning/datasources/prometheus.yml",
    "dpc-grafana/grafana/provisioning/dashboards/provider.yml",
    "dpc-grafana/grafana/dashboards/overview.json",
    "dpc-schema/001_extensions.sql",
    "dpc-schema/007_grants.sql",
  ]) {
    t.true(rendered.has(file), file);
  }
  t.is(schemaStep, "dpc-schema");
});

test("each rendered file has the delivered content and mode", (t) => {
  for (const [file, want] of delivered) {
    const got = rendered.get(file);
    if (!got) continue; // reported by the set comparison
    t.is(got.mode.toString(8), want.mode.toString(8), `${file}: mode`);
    if (file.startsWith(`${schemaStep}/`)) {
      // A header of SQL comments says for which context the migration was rendered; then the SQL as applied.
      t.true(got.content.endsWith(want.content), `${file}: SQL differs from what the Schema step applies`);
      const header = got.content.slice(0, got.content.length - want.content.length).trimEnd().split("\n");
      t.true(header.every((line) => line.startsWith("-- ")), `${file}: header is not SQL comments`);
      t.regex(header.join("\n"), /Citus present.*HNSW access method "hnsw" \(pgvector\)/s, file);
    } else {
      t.is(got.content, want.content, `${file}: content`);
    }
  }
});

test("passwords: only placeholders, none generated but PgBouncer's own (and etcd's fingerprint key, in no file); files that hold one are 0600", (t) => {
  t.deepEqual(generatedPasswords, [...Object.keys(GENERATED_POOLER), "generated-dpc-etcd-fingerprint-key"]);
  t.false([...rendered.values()].some((f) => f.content.includes("generated-dpc-etcd-fingerprint-key")), "the fingerprint key is in no rendered file");
  const holders = [...rendered].filter(([file, f]) => file !== "README.txt" && /PLACEHOLDER-([a-zA-Z]+Password|key-)/.test(f.content)).map(([file]) => file);
  t.true(holders.includes("dpc-coordinator-0/tls/server.key"));
  t.true(holders.includes("dpc-etcd-0/tls/server.key"));
  t.true(holders.includes("dpc-prometheus/tls/client.key"));
  t.true(holders.includes("dpc-coordinator-0/patroni.yml"));
  t.true(holders.includes("dpc-grafana/grafana/admin-password"));
  t.true(holders.includes("dpc-pgbouncer/userlist.txt"));
  for (const file of holders) t.is(rendered.get(file)!.mode, 0o600, file);
  t.is(rendered.get("dpc-grafana/grafana/admin-password")!.content, "PLACEHOLDER-grafanaAdminPassword");
});

test("the rendered alert tests pass against the rendered alert rules (promtool test rules)", async (t) => {
  const result = await run("promtool", ["test", "rules", "promtool/alert-tests.yml"], { cwd: outDir }).catch((error) => error);
  if ((result as NodeJS.ErrnoException).code === "ENOENT") {
    t.fail("promtool not found on PATH: it comes with Debian's `prometheus` package (npm run setup installs it)");
    return;
  }
  t.regex(`${result.stdout}`, /SUCCESS/, `${result.stdout}${result.stderr}`);
});

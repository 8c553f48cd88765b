// The Pulumi program under the SDK's mocks: what `pulumi up` of the dev stack would register, in
// which order, and that passwords stay secret. No engine, no docker: the mock monitor
// (_pulumi-harness.ts) records each registration request (type, name, parent, dependencies, inputs).
import test from "ava";
import * as pulumi from "@pulumi/pulumi";
import { parse as parseYaml } from "yaml";
import {
  BENCHMARK_TYPE,
  MOCK_BENCHMARK_SUMMARY,
  MOCK_SCHEMA_OUTPUTS,
  PROJECT,
  SCHEMA_TYPE,
  byName,
  byType,
  containers,
  devStackConfig,
  generatedPasswords,
  isSecretValue,
  passwordLeaks,
  registrations,
  reveal,
  settled,
  valueOf,
} from "./_pulumi-harness.ts";

const CONFIGURED_APP_PASSWORD = "app-password-from-secret-config";
const CONFIGURED_GRAFANA_PASSWORD = "grafana-password-from-secret-config";

// A query string makes a fresh module instance: each import runs the program anew.
const PROGRAM = "../../index.ts";
const databaseContainers = () => containers().filter((r) => /-(coordinator|worker\d+)-\d+$/.test(r.name));

// ---------------------------------------------------------------------------------------------
// Serial: the invalid-config import must see an empty registry, before the dev stack registers.

test.serial("invalid config throws a ConfigError naming every problem and registers no resource", async (t) => {
  pulumi.runtime.setAllConfig({ ...devStackConfig(), [`${PROJECT}:workerGroups`]: "0", [`${PROJECT}:etcdMembers`]: "4" });
  const error = await t.throwsAsync(import(`${PROGRAM}?invalid-config`));
  t.is(error!.name, "ConfigError");
  t.regex(error!.message, /workerGroups/);
  t.regex(error!.message, /etcdMembers/);
  await settled();
  t.is(registrations.length, 0);
});

test.serial("the kubernetes platform without databaseImage is refused before any resource is registered", async (t) => {
  pulumi.runtime.setAllConfig({ ...devStackConfig(), [`${PROJECT}:platform`]: "kubernetes" });
  const error = await t.throwsAsync(import(`${PROGRAM}?kubernetes`));
  t.is(error!.name, "ConfigError");
  t.regex(error!.message, /databaseImage: got "" with platform "kubernetes"/);
  await settled();
  t.is(registrations.length, 0);
});

let stack: any;
test.serial("the dev stack program loads", async (t) => {
  // The dev stack, plus two secrets from config and a non-default benchmark mode and run id.
  pulumi.runtime.setAllConfig(
    {
      ...devStackConfig(),
      [`${PROJECT}:appPassword`]: CONFIGURED_APP_PASSWORD,
      [`${PROJECT}:grafanaAdminPassword`]: CONFIGURED_GRAFANA_PASSWORD,
      [`${PROJECT}:benchmarkMode`]: "full",
      [`${PROJECT}:benchmarkRunId`]: "run-1",
    },
    [`${PROJECT}:appPassword`, `${PROJECT}:grafanaAdminPassword`],
  );
  stack = await import("../../index.ts");
  await valueOf(stack.appConnectionString);
  await settled();
  t.true(registrations.length > 0);
});

const DATABASE_NODES = [
  ...[0, 1, 2].map((m) => `dpc-coordinator-${m}`),
  ...[1, 2, 3, 4, 5, 6].flatMap((g) => [0, 1].map((m) => `dpc-worker${g}-${m}`)),
];

test.serial("one container per process: coordinator 3 + 6 worker groups x 2, etcd 3, HAProxy, PgBouncer, monitoring", (t) => {
  const names = containers().map((r) => r.name).sort();
  const stateful = [...DATABASE_NODES, ...[0, 1, 2].map((m) => `dpc-etcd-${m}`), "dpc-prometheus"];
  const expected = [
    ...stateful,
    "dpc-haproxy",
    "dpc-pgbouncer",
    // Monitoring: a postgres_exporter beside every PostgreSQL node, the PgBouncer exporter, Grafana.
    ...DATABASE_NODES.map((n) => `${n}-exporter`),
    "dpc-pgbouncer-exporter",
    "dpc-grafana",
  ].sort();
  t.deepEqual(names, expected);
  // A named volume per stateful process, one network, one database image.
  const volumes = registrations.filter((r) => r.type === "docker:index/volume:Volume").map((r) => r.name).sort();
  t.deepEqual(volumes, stateful.map((n) => `${n}-data`).sort());
  const networks = registrations.filter((r) => r.type === "docker:index/network:Network");
  t.is(networks.length, 1);
  t.deepEqual(networks[0].inputs.ipamConfigs, [{ subnet: "172.28.0.0/16" }]);
  const images = registrations.filter((r) => r.type === "docker:index/image:Image");
  t.is(images.length, 1);
    const build = images[0].inputs.build as any;
  t.deepEqual(build.args, { BASE_IMAGE: "citusdata/citus:13.0.3", PG_MAJOR: "17" });
  t.is(build.context, "images");
  t.true(images[0].inputs.skipPush as boolean);
});

test.serial("components: type tokens, one per group, containers parented by their component", (t) => {
  const components = registrations.filter((r) => !r.custom);
  const count = (type: string) => components.filter((r) => r.type === type).length;
  t.is(count("dpc:index:Cluster"), 1);
  t.is(count("dpc:index:Etcd"), 1);
  t.is(count("dpc:index:PatroniGroup"), 7);
  t.is(count("dpc:index:Router"), 1);
  t.is(count("dpc:index:Schema"), 1);
  t.is(count("dpc:index:Monitoring"), 1);
  const cluster = byName("dpc");
  for (const component of components.filter((r) => r.type !== "dpc:index:Cluster")) t.is(component.parent, cluster.urn);
  for (const container of databaseContainers()) {
    const group = container.name.replace(/-\d+$/, "");
    t.is(container.parent, byName(group).urn, container.name);
    t.is(byName(group).type, "dpc:index:PatroniGroup");
  }
  for (const name of ["dpc-etcd-0", "dpc-etcd-1", "dpc-etcd-2"]) t.is(byName(name).parent, byName("dpc-etcd").urn);
  for (const name of ["dpc-haproxy", "dpc-pgbouncer"]) t.is(byName(name).parent, byName("dpc-router").urn);
});

test.serial("each database container carries its own patroni.yml: its name, its group's citus.group, secret", (t) => {
  const containersByGroup = new Map<number, string[]>();
  for (const container of databaseContainers()) {
    t.true(isSecretValue(container.inputs.uploads), `${container.name}: uploads are not secret`);
    const uploads = reveal(container.inputs.uploads) as { file: string; content: string; permissions: string }[];
    const patroni = uploads.find((u) => u.file === "/etc/dpc/patroni.yml");
    t.truthy(patroni, container.name);
    t.is(patroni!.permissions, "0600");
    const yml = parseYaml(patroni!.content);
    t.is(yml.name, container.name);
    t.is(yml.scope, "dpc");
    const expectedGroup = container.name.startsWith("dpc-coordinator") ? 0 : Number(/worker(\d+)/.exec(container.name)![1]);
    t.is(yml.citus.group, expectedGroup, container.name);
    t.is(yml.postgresql.connect_address, `${container.name}:5432`);
    t.is(yml.restapi.authentication.password, "generated-dpc-restApi-password");
    containersByGroup.set(expectedGroup, [...(containersByGroup.get(expectedGroup) ?? []), container.name]);
    // Worker nodes also get the callback that tells the coordinator of their promotion.
    const callback = expectedGroup > 0 ? ["/etc/dpc/citus-after-promote.py"] : [];
    const tls = ["/etc/dpc/tls/ca.crt", "/etc/dpc/tls/server.crt", "/etc/dpc/tls/server.key"];
    t.deepEqual(uploads.map((u) => u.file).sort(), ["/etc/dpc/app-password", ...callback, "/etc/dpc/patroni.yml", "/etc/dpc/post-bootstrap.sh", "/etc/dpc/timeline-guard.py", ...tls]);
    t.is(uploads.find((u) => u.file === "/etc/dpc/tls/server.key")!.permissions, "0600");
    t.is(yml.restapi.certfile, "/etc/dpc/tls/server.crt");
    t.is(yml.postgresql.callbacks?.on_role_change, expectedGroup > 0 ? "/etc/dpc/citus-after-promote.py" : undefined, container.name);
    t.is(yml.postgresql.pre_promote, "/etc/dpc/timeline-guard.py", container.name);
    t.is(uploads.find((u) => u.file === "/etc/dpc/app-password")!.content, CONFIGURED_APP_PASSWORD);
  }
  t.deepEqual([...containersByGroup.keys()].sort(), [0, 1, 2, 3, 4, 5, 6]);
});

test.serial("docker containers: hostname = name, network alias, healthcheck, restart policy, replace by delete first", (t) => {
  const network = registrations.find((r) => r.type === "docker:index/network:Network")!;
  for (const container of containers()) {
    const inputs = container.inputs;
    t.is(inputs.name, container.name);
    t.is(inputs.hostname, container.name);
    t.deepEqual(inputs.networksAdvanced, [{ name: network.inputs.name, aliases: [container.name] }]);
    t.is(inputs.restart, "unless-stopped");
    t.true(container.deleteBeforeReplace, container.name);
        t.is((inputs.healthcheck as any).tests[0], "CMD", container.name);
    // An explicit ndots: Docker's embedded DNS answers an unknown single-label name (a dead peer's) at once.
    t.deepEqual(inputs.dnsOpts, ["ndots:1", "timeout:1", "attempts:1"], container.name);
    // A connect to a removed container's address gives up after 15 s, not 127 (destroy's clean stops).
    t.deepEqual(inputs.sysctls, { "net.ipv4.tcp_syn_retries": "3" }, container.name);
    t.false(container.name.includes("."), `${container.name}: a single-label name`);
  }
  const published = containers()
    .filter((c) => ((c.inputs.ports as unknown[]) ?? []).length > 0)
    .map((c) => [c.name, c.inputs.ports]);
  // Only the router, Prometheus and Grafana publish host ports; the database nodes, etcd and the
  // exporters stay on the cluster network.
  t.deepEqual(published.sort(), [
    // Prometheus and Grafana on the Docker host's loopback only (monitoringPublishAddress).
    ["dpc-grafana", [{ internal: 3000, external: 3000, ip: "127.0.0.1", protocol: "tcp" }]],
    ["dpc-haproxy", [{ internal: 5000, external: 5000, ip: "0.0.0.0", protocol: "tcp" }, { internal: 5001, external: 5001, ip: "0.0.0.0", protocol: "tcp" }]],
    ["dpc-pgbouncer", [{ internal: 6432, external: 6432, ip: "0.0.0.0", protocol: "tcp" }]],
    ["dpc-prometheus", [{ internal: 9090, external: 9090, ip: "127.0.0.1", protocol: "tcp" }]],
  ]);
  for (const container of databaseContainers()) {
    // The provider's read-back form of 1 CPU (docker-canonical.ts).
    t.is(container.inputs.cpus, "1.0");
    t.is(container.inputs.memory, 2048);
    // /dev/shm holds a parallel HNSW build's graph: maintenance_work_mem (2048 / 4 = 512 MB) + 64.
    t.is(container.inputs.shmSize, 576);
    t.deepEqual(container.inputs.entrypoints, ["/usr/local/bin/dpc-entrypoint"]);
    t.regex(container.inputs.image as string, /^dpc-postgres:pg17@sha256:/);
    t.deepEqual(container.inputs.volumes, [{ volumeName: `${container.name}-data`, containerPath: "/var/lib/postgresql/patroni" }]);
  }
  const etcd0 = byName("dpc-etcd-0").inputs.entrypoints as string[];
  t.is(etcd0[0], "/usr/local/bin/etcd");
  t.true(etcd0.includes("--name=dpc-etcd-0"));
  // PgBouncer runs as a fixed non-root user that owns its auth file, mode 0600.
  const pgbouncer = byName("dpc-pgbouncer").inputs;
  t.is(pgbouncer.user, "70:70");
  const userlist = (reveal(pgbouncer.uploads) as { file: string; permissions: string; owner: string }[]).find((u) => u.file.endsWith("userlist.txt"))!;
  t.deepEqual([userlist.permissions, userlist.owner], ["0600", "70"]);
});

test.serial("dependency graph: etcd before every Patroni container, the coordinator group before the router", (t) => {
  const urnsOf = (pattern: RegExp) => containers().filter((c) => pattern.test(c.name)).map((c) => c.urn);
  const etcd = urnsOf(/^dpc-etcd-\d$/);
  const coordinator = urnsOf(/^dpc-coordinator-\d$/);
  t.is(etcd.length, 3);
  for (const container of databaseContainers()) {
    for (const urn of etcd) t.true(container.dependencies.includes(urn), `${container.name} does not wait for ${urn}`);
  }
  for (const urn of coordinator) t.true(byName("dpc-haproxy").dependencies.includes(urn), `HAProxy does not wait for ${urn}`);
  // PgBouncer waits for HAProxy, so transitively for the coordinator group too.
  t.true(byName("dpc-pgbouncer").dependencies.includes(byName("dpc-haproxy").urn));
  // The other direction never holds: etcd depends on no database container.
  for (const name of ["dpc-etcd-0", "dpc-etcd-1", "dpc-etcd-2"]) {
    t.false(byName(name).dependencies.some((urn) => /coordinator|worker|haproxy|pgbouncer/.test(urn)));
  }
});

test.serial("stack outputs: endpoints, etcd endpoints, members per group", async (t) => {
  t.is(await valueOf(stack.readWriteEndpoint), "localhost:5000");
  t.is(await valueOf(stack.readOnlyEndpoint), "localhost:5001");
  t.is(await valueOf(stack.pgbouncerEndpoint), "localhost:6432");
  t.deepEqual(await valueOf(stack.etcdEndpoints), ["https://dpc-etcd-0:2379", "https://dpc-etcd-1:2379", "https://dpc-etcd-2:2379"]);
  const members = (await valueOf(stack.membersPerGroup)) as Record<string, string[]>;
  t.deepEqual(Object.keys(members), ["0", "1", "2", "3", "4", "5", "6"]);
  t.deepEqual(members["0"], ["dpc-coordinator-0", "dpc-coordinator-1", "dpc-coordinator-2"]);
  t.deepEqual(members["6"], ["dpc-worker6-0", "dpc-worker6-1"]);
  t.is(await valueOf(stack.schemaVersion), MOCK_SCHEMA_OUTPUTS.version);
  t.deepEqual(await valueOf(stack.benchmarkSummary), MOCK_BENCHMARK_SUMMARY);
  t.is(await valueOf(stack.prometheusEndpoint), "localhost:9090");
  t.is(await valueOf(stack.grafanaEndpoint), "localhost:3000");
});

test.serial("secrets: the connection string is a secret; passwords appear in no plain input or output", async (t) => {
  t.true(await pulumi.isSecret(stack.appConnectionString));
  t.is(await valueOf(stack.appConnectionString), `postgresql://app:${CONFIGURED_APP_PASSWORD}@localhost:6432/vectors`);
  t.true(await pulumi.isSecret(stack.grafanaAdminPassword));
  t.is(await valueOf(stack.grafanaAdminPassword), CONFIGURED_GRAFANA_PASSWORD);
  const plainOutputs = ["readWriteEndpoint", "readOnlyEndpoint", "pgbouncerEndpoint", "etcdEndpoints", "membersPerGroup",
    "schemaVersion", "rolloutReport", "benchmarkSummary", "prometheusEndpoint", "grafanaEndpoint", "caCertificate"];
  for (const name of plainOutputs) {
    t.false(pulumi.Output.isInstance(stack[name]) && (await pulumi.isSecret(stack[name])), name);
  }
  // Every output is listed above or known secret: a new output must be classified here.
  t.deepEqual(Object.keys(stack).sort(), [...plainOutputs, "appConnectionString", "appConnectionStringVerifyFull", "grafanaAdminPassword"].sort());
  // The CA certificate is public; the verify-full URL is the app URL with sslmode=verify-full, secret.
  t.regex(await valueOf(stack.caCertificate), /^-----BEGIN CERTIFICATE-----/);
  t.true(await pulumi.isSecret(stack.appConnectionStringVerifyFull));
  t.is(await valueOf(stack.appConnectionStringVerifyFull), `postgresql://app:${CONFIGURED_APP_PASSWORD}@localhost:6432/vectors?sslmode=verify-full`);
  // Eight passwords generated (the app and Grafana passwords came from secret config; the exporters'
  // role's, PgBouncer's lookup and admin credentials and etcd's fingerprint key are generated),
  // special characters off.
  t.is(generatedPasswords.length, 8);
  for (const r of registrations.filter((r) => r.type === "random:index/randomPassword:RandomPassword")) {
    t.is(r.inputs.special, false);
  }
  const passwords = [CONFIGURED_APP_PASSWORD, CONFIGURED_GRAFANA_PASSWORD, ...generatedPasswords];
  // The scan below is not vacuous: the passwords are in the recorded inputs, inside secrets (all but
  // etcd's fingerprint key, which only keys the HMAC of its containers' label and is no input).
  const everything = JSON.stringify(registrations.map((r) => r.inputs));
  for (const password of passwords) t.is(everything.includes(password), !password.endsWith("etcd-fingerprint-key"), password);
  t.deepEqual(passwordLeaks(passwords), [], "a password outside a secret");
});

// ---------------------------------------------------------------------------------------------
// Schema and the post-deploy benchmark: dynamic resources (their providers run only in `pulumi up`).

const schemaMigrations = () => byType(SCHEMA_TYPE)[0];
const benchmarkRun = () => byType(BENCHMARK_TYPE)[0];

test.serial("Schema: a component whose migrations resource waits for HAProxy and every Patroni group; PgBouncer waits for it", (t) => {
  const schema = byName("dpc-schema");
  t.is(schema.type, "dpc:index:Schema");
  t.is(schema.parent, byName("dpc").urn);
  t.deepEqual(schema.inputs, { database: "vectors" });
  t.is(byType(SCHEMA_TYPE).length, 1);
  const migrations = schemaMigrations();
  t.is(migrations.parent, schema.urn);
  // dependsOn a component waits for its resources: every database container, and HAProxy.
  for (const name of [...DATABASE_NODES, "dpc-haproxy"]) {
    t.true(migrations.dependencies.includes(byName(name).urn), `the schema does not wait for ${name}`);
  }
  // PgBouncer starts (or is replaced) only after the migrations: 011 creates the role its auth_query
  // logs in as, and a PgBouncer without it refuses every application login (a stack deployed before
  // auth_query, upgraded). The schema step does not wait for PgBouncer.
  const pgbouncer = byName("dpc-pgbouncer");
  t.true(pgbouncer.dependencies.includes(migrations.urn), "PgBouncer does not wait for the schema");
  t.true(pgbouncer.dependencies.includes(byName("dpc-haproxy").urn));
  t.false(migrations.dependencies.includes(pgbouncer.urn), "the schema waits for PgBouncer");
  // Nothing else waits for the schema but the worker rebalance and the benchmark.
  const dependents = registrations.filter((r) => r.dependencies.includes(migrations.urn)).map((r) => r.name);
  t.deepEqual(dependents.sort(), ["dpc-benchmark", "dpc-pgbouncer", "dpc-worker-rebalance"].sort());
});

test.serial("Schema: the superuser URL through HAProxy's read-write listener and the app password (for Citus) are secret, in inputs and outputs", (t) => {
  const { inputs, additionalSecretOutputs } = schemaMigrations();
  t.true(isSecretValue(inputs.connectionString));
  t.is(reveal(inputs.connectionString), "postgresql://postgres:generated-dpc-superuser-password@localhost:5000/vectors");
  t.deepEqual(additionalSecretOutputs, ["connectionString", "poolerAdminConnectionString", "appPassword", "monitorPassword", "poolerLookupPassword"]);
  // PgBouncer's lookup role's password (generated, secret): migration 011's role gets it.
  t.true(isSecretValue(inputs.poolerLookupPassword));
  t.is(reveal(inputs.poolerLookupPassword), "generated-dpc-pooler-lookup-password");
  // The exporters' role's password (secret) and the CA both connections verify the servers with.
  t.true(isSecretValue(inputs.monitorPassword));
  t.regex(inputs.ca as string, /^-----BEGIN CERTIFICATE-----/);
  // PgBouncer's admin console, for RECONNECT after the migrations changed database settings: as
  // PgBouncer's own admin user (generated), not the superuser, whose password the config rotates.
  t.true(isSecretValue(inputs.poolerAdminConnectionString));
  t.is(reveal(inputs.poolerAdminConnectionString), "postgresql://pgbouncer_admin:generated-dpc-pooler-admin-password@localhost:6432/pgbouncer");
  t.true(isSecretValue(inputs.appPassword));
  t.is(reveal(inputs.appPassword), "app-password-from-secret-config");
  t.is((inputs.config as { database: string }).database, "vectors");
  t.regex(inputs.migrationsFingerprint as string, /^[0-9a-f]{64}$/);
  t.is(inputs.timeoutSeconds, 600);
  // The serialized provider captures only file URLs: no password, no imported module.
  const provider = String(reveal(inputs.__provider));
  t.regex(provider, /tsx\/dist\/esm\/api/);
  t.regex(provider, /components\/schema-apply\.ts/);
  t.false(provider.includes("generated-"));
  t.false(/require\("pg"\)/.test(provider));
});

test.serial("BenchmarkRun: after the Schema, through PgBouncer as the app role, mode and run id from config", (t) => {
  t.is(byType(BENCHMARK_TYPE).length, 1);
  const run = benchmarkRun();
  t.is(run.name, "dpc-benchmark");
  t.is(run.parent, byName("dpc").urn);
  t.true(run.dependencies.includes(schemaMigrations().urn), "the benchmark does not wait for the schema");
  t.true(run.dependencies.includes(byName("dpc-pgbouncer").urn), "the benchmark does not wait for PgBouncer");
  t.is(run.inputs.mode, "full");
  t.is(run.inputs.runId, "run-1");
  t.is(run.inputs.schemaVersion, MOCK_SCHEMA_OUTPUTS.version);
  t.deepEqual(run.inputs.dataset, { dimensions: 384, k: 10, hnswM: 16, hnswEfConstruction: 64, shardCount: 12, exactMaxRows: 2000 });
  t.true(isSecretValue(run.inputs.url));
  t.is(reveal(run.inputs.url), `postgresql://app:${CONFIGURED_APP_PASSWORD}@localhost:6432/vectors`);
  t.deepEqual(run.additionalSecretOutputs, ["url"]);
  t.regex(String(reveal(run.inputs.__provider)), /components\/benchmark-step\.ts/);
});

// ---------------------------------------------------------------------------------------------
// Monitoring.

type Upload = { file: string; content: string; permissions: string; owner?: string; group?: string };
const uploadsOf = (name: string) => reveal(byName(name).inputs.uploads) as Upload[];
const uploadAt = (name: string, path: string) => uploadsOf(name).find((u) => u.file === path)!;
const envOf = (name: string) =>
  Object.fromEntries((byName(name).inputs.envs as string[]).map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]));

test.serial("Monitoring: a component parenting Prometheus, Grafana and the exporters", (t) => {
  const monitoring = byName("dpc-monitoring");
  t.is(monitoring.type, "dpc:index:Monitoring");
  t.is(monitoring.parent, byName("dpc").urn);
  const children = [...DATABASE_NODES.map((n) => `${n}-exporter`), "dpc-pgbouncer-exporter", "dpc-prometheus", "dpc-grafana"];
  for (const name of children) t.is(byName(name).parent, monitoring.urn, name);
  t.is(byName("dpc-prometheus-data").parent, monitoring.urn);
  // Explicit commands and config paths on the configured upstream images.
  t.is(byName("dpc-prometheus").inputs.image, "prom/prometheus:v3.5.0");
  t.deepEqual(byName("dpc-prometheus").inputs.entrypoints, [
    "/bin/prometheus", "--config.file=/etc/dpc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus", "--web.listen-address=0.0.0.0:9090",
  ]);
  t.deepEqual(byName("dpc-prometheus").inputs.volumes, [{ volumeName: "dpc-prometheus-data", containerPath: "/prometheus" }]);
  t.is(byName("dpc-grafana").inputs.image, "grafana/grafana:11.6.0");
  t.deepEqual(byName("dpc-grafana").inputs.entrypoints, ["/run.sh"]);
  t.is(byName("dpc-coordinator-0-exporter").inputs.image, "quay.io/prometheuscommunity/postgres-exporter:v0.17.1");
  t.is(byName("dpc-pgbouncer-exporter").inputs.image, "prometheuscommunity/pgbouncer-exporter:v0.12.1");
});

test.serial("Monitoring: one postgres_exporter per PostgreSQL node, pointed at its node, its password in a 0600 file", (t) => {
  for (const node of DATABASE_NODES) {
    const name = `${node}-exporter`;
    const exporter = byName(name).inputs;
    t.deepEqual(exporter.entrypoints, ["/bin/postgres_exporter", "--web.listen-address=:9187", "--extend.query-path=/etc/dpc/postgres-exporter/queries.yaml"]);
    t.deepEqual(envOf(name), {
      // The application_name Citus is told to show shard tables to (citus.show_shards_for_app_name_prefixes).
      // TLS, the node verified by the CA and its name; as the exporters' role (pg_monitor only).
      DATA_SOURCE_URI: `${node}:5432/vectors?sslmode=verify-full&sslrootcert=%2Fetc%2Fdpc%2Ftls%2Fca.crt&application_name=postgres_exporter`,
      DATA_SOURCE_USER: "exporter",
      DATA_SOURCE_PASS_FILE: "/etc/dpc/postgres-exporter/password",
    });
    t.is(exporter.user, "65534:65534");
    t.true(isSecretValue(exporter.uploads), name);
    const password = uploadAt(name, "/etc/dpc/postgres-exporter/password");
    t.deepEqual([password.content, password.permissions, password.owner], ["generated-dpc-monitor-password", "0600", "65534"]);
    t.regex(uploadAt(name, "/etc/dpc/tls/ca.crt").content, /^-----BEGIN CERTIFICATE-----/);
    const queries = parseYaml(uploadAt(name, "/etc/dpc/postgres-exporter/queries.yaml").content);
    t.truthy(queries.pg_cache, "the exporter queries file");
  }
});

test.serial("Monitoring: the PgBouncer exporter reads its connection string from a 0600 file", (t) => {
  const name = "dpc-pgbouncer-exporter";
  const command = (byName(name).inputs.entrypoints as string[]).join(" ");
  t.regex(command, /PGBOUNCER_EXPORTER_CONNECTION_STRING="\$\(cat \/etc\/dpc\/pgbouncer-exporter\/connection-string\)"/);
  t.regex(command, /exec \/bin\/pgbouncer_exporter --web.listen-address=:9127/);
  const file = uploadAt(name, "/etc/dpc/pgbouncer-exporter/connection-string");
  // As the monitoring role, PgBouncer's stats_users: SHOW only.
  t.is(file.content, "postgres://exporter:generated-dpc-monitor-password@dpc-pgbouncer:6432/pgbouncer?sslmode=verify-full&sslrootcert=%2Fetc%2Fdpc%2Ftls%2Fca.crt");
  t.deepEqual([file.permissions, file.owner], ["0600", "65534"]);
  t.deepEqual(byName(name).inputs.envs, []);
});

test.serial("Monitoring: Prometheus scrapes each node's exporter container, labelled with the node", (t) => {
  const config = parseYaml(uploadAt("dpc-prometheus", "/etc/dpc/prometheus/prometheus.yml").content);
  t.deepEqual(config.rule_files, ["alerts.yml"]);
  t.truthy(uploadAt("dpc-prometheus", "/etc/dpc/prometheus/alerts.yml").content.includes("groups:"));
  const job = (name: string) => config.scrape_configs.find((j: { job_name: string }) => j.job_name === name);
  const exporterTargets = job("postgres_exporter").static_configs.map((c: any) => [c.targets[0], c.labels.member]);
  t.deepEqual(exporterTargets, DATABASE_NODES.map((n) => [`${n}-exporter:9187`, n]));
  const patroniTargets = job("patroni").static_configs.map((c: any) => c.targets[0]);
  t.deepEqual(patroniTargets, DATABASE_NODES.map((n) => `${n}:8008`));
  t.deepEqual(job("pgbouncer_exporter").static_configs[0].targets, ["dpc-pgbouncer-exporter:9127"]);
  // Patroni and etcd over HTTPS, verified with the CA, presenting the operator's client certificate.
  for (const name of ["patroni", "etcd"]) {
    t.is(job(name).scheme, "https", name);
    t.deepEqual(job(name).tls_config, { ca_file: "/etc/dpc/tls/ca.crt", cert_file: "/etc/dpc/tls/client.crt", key_file: "/etc/dpc/tls/client.key" }, name);
  }
  // Prometheus's files hold the operator's key: secret uploads, the key 0600 owned by Prometheus's user.
  t.true(isSecretValue(byName("dpc-prometheus").inputs.uploads));
  const key = uploadAt("dpc-prometheus", "/etc/dpc/tls/client.key");
  t.deepEqual([key.permissions, key.owner], ["0600", "65534"]);
});

test.serial("Monitoring: Grafana provisioned (datasource, dashboard provider, dashboard), admin password a 0600 file", (t) => {
  const name = "dpc-grafana";
  t.true(isSecretValue(byName(name).inputs.uploads));
  const datasource = parseYaml(uploadAt(name, "/etc/dpc/grafana/provisioning/datasources/prometheus.yml").content);
  t.is(datasource.datasources[0].url, "http://dpc-prometheus:9090");
  const provider = parseYaml(uploadAt(name, "/etc/dpc/grafana/provisioning/dashboards/provider.yml").content);
  t.is(provider.providers[0].options.path, "/etc/dpc/grafana/dashboards");
  const dashboard = JSON.parse(uploadAt(name, "/etc/dpc/grafana/dashboards/overview.json").content);
  t.true(dashboard.panels.length >= 9);
  const password = uploadAt(name, "/etc/dpc/grafana/admin-password");
  t.deepEqual([password.content, password.permissions, password.owner, password.group], [CONFIGURED_GRAFANA_PASSWORD, "0600", "472", "0"]);
  t.deepEqual(envOf(name), {
    GF_PATHS_PROVISIONING: "/etc/dpc/grafana/provisioning",
    GF_SECURITY_ADMIN_USER: "admin",
    GF_SECURITY_ADMIN_PASSWORD__FILE: "/etc/dpc/grafana/admin-password",
    GF_USERS_ALLOW_SIGN_UP: "false",
  });
  t.is(byName(name).inputs.user, "472:0");
});

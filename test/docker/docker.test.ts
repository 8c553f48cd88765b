// `npm run test:docker`: the containers the Docker platform declares, run for real, on Citus. The
// Cluster component registers its resources under Pulumi's mocks (no Pulumi engine here); the adapter
// creates them in our own dockerd (scripts/docker-install.sh) with locally built images, the Citus
// base built from the vendored Citus source; then the cluster is checked end to end: Citus metadata
// and shard placement, the client path, the Schema step (with PgBouncer RECONNECT), the pooler as
// drivers meet it, a quick benchmark, a parallel HNSW build in /dev/shm, the owner and mode of every
// secret file, a standby's promotion over a partly streamed segment of a newer timeline (PostgreSQL 17
// PANICs without the timeline guard; test/cluster/_partial-segment.ts), HAProxy following a container
// to a new address, failover of a worker group and of the coordinator under writes, the stack declared again with a changed databaseMemoryMb (the
// program's rolling replacement: one container at a time, the adapter replacing each as its
// registration arrives), a new etcdImage rolled through the etcd members one at a time, and
// `pulumi destroy` keeping the data for the next `up`.
import test, { type ExecutionContext } from "ava";
import { isDeepStrictEqual } from "node:util";
import { parseClusterConfig, planTopology } from "../../components/spec.ts";
import { ROLES, PORTS } from "../../components/render/index.ts";
import { maintenanceWorkMemMb, sharedMemoryMb } from "../../components/render/patroni.ts";
import { migrationsFingerprint, schemaProvider } from "../../components/schema.ts";
import { RECONNECT_NOTE } from "../../components/schema-apply.ts";
import { waitForMetadataSync } from "../../components/citus-metadata.ts";
import { applyMigrations, type ApplyResult } from "../../sql/apply.ts";
import { APP_SCHEMA } from "../../sql/migrations.ts";
import { runPostDeployBenchmark } from "../../benchmarks/post-deploy.ts";
import { clusterMembers, type ClusterMember } from "../../local/patroni-api.ts";
import { ContinuousWriter, DEFAULT_BUCKET, missingWrites } from "../../local/writer.ts";
import { sessionPoolDatabase } from "../../components/render/pgbouncer.ts";
import { registerPoolerChecks } from "../support/pooler-checks.ts";
import { postgresConfigProvider } from "../../components/postgres-config.ts";
import type { PostgresConfigInputs } from "../../components/rollout/apply.ts";
import { passwordRotationProvider, type PasswordRotationInputs } from "../../components/password-rotation.ts";
import { workerMembershipProvider, workerRebalanceProvider } from "../../components/scaling/worker-scaling.ts";
import { useReplacementEnvironment } from "../../components/rolling-replacement.ts";
import type { RollingReplacement } from "../../components/rollout/replacement.ts";
import type { PasswordName } from "../../components/rotation/plan.ts";
import type { EtcdRollingReplacement } from "../../components/rollout/etcd-replacement.ts";
import { etcdHealthcheck } from "../../components/etcd.ts";
import { DockerAdapter } from "./adapter.ts";
import { declareCluster, type Registration } from "./declared.ts";
import { startEngine, stopEngine } from "./engine.ts";
import { citusSource, NO_STAND_IN, STAND_INS } from "./images.ts";
import { distPrimaries, placementsPerGroup, query, sleep, takenPorts, waitFor } from "./probes.ts";
import { DOCKER_TEST_STACK, PROJECT, testPasswords } from "./stack.ts";
import { verifyFullUrl, quietClient } from "../../components/pg-client.ts";
import { request, trustOrigin } from "../../components/https.ts";
import { CERTIFICATES_TYPE, certificatesProvider } from "../../components/certificates.ts";
import { containerAddressing, containerLayout, dockerHostNaming } from "../../components/render/container.ts";
import { cleanUpPartialSegmentScenario, runPartialSegmentScenario, type ScenarioHost } from "../cluster/_partial-segment.ts";

const log = (line: string) => console.log(`[docker] ${line}`);

const engine = startEngine(log);
if ("unavailable" in engine) {
  // Loud, not skipped: CI must not pass without the Docker platform having run.
  test("the Docker engine starts (scripts/docker-install.sh)", (t) => {
    t.fail(`the Docker engine cannot run on this machine: ${engine.unavailable}`);
  });
} else {
  const passwords = testPasswords();
  // The program reads the containers' fingerprint labels from the engine the provider would use
  // (components/rolling-replacement.ts): ours. Leftovers of an interrupted run would be "deployed"
  // containers to roll: removed first.
  process.env.DOCKER_HOST = `unix://${engine.socketPath}`;
  const adapter = new DockerAdapter(engine.socketPath, log);
  await adapter.removeClusterLeftovers(DOCKER_TEST_STACK.clusterName);
  const { config, registrations, ca } = await declareCluster(PROJECT, DOCKER_TEST_STACK, passwords);
  const topology = planTopology(config);
  // Every client verifies the cluster's certificates against the stack's CA (sslmode=verify-full):
  // PgBouncer and PostgreSQL admit TLS only.
  const plainUrl = (role: "app" | "superuser", port: number, database = config.database) =>
    `postgresql://${ROLES[role]}:${encodeURIComponent(passwords[role])}@127.0.0.1:${port}/${database}`;
  const url = (role: "app" | "superuser", port: number) => verifyFullUrl(plainUrl(role, port), ca);
  // The client path (published PgBouncer port) and, for work that needs a session, HAProxy's.
  const appUrl = url("app", config.pgbouncerPort);
  const adminUrl = url("superuser", config.haproxyReadWritePort);
  const readOnlyUrl = url("superuser", config.haproxyReadOnlyPort);
  const names = (group: number) => topology.groups[group].map((n) => n.name);
  /** Patroni's REST API over HTTPS at the container's address, verified against the CA and the container's name. */
  const restUrl = async (name: string) => {
    const ip = await adapter.ipOf(name);
    // A stopped container has no address: a URL refused at once, so the member reads as unreachable.
    if (!ip) return "https://127.0.0.1:1";
    const origin = `https://${ip}:${PORTS.patroniRest}`;
    trustOrigin(origin, { ca, serverName: name });
    return origin;
  };
  const restUrls = (group: number) => Promise.all(names(group).map(restUrl));

  /** The group's members as Patroni reports them (only this group's, whatever /cluster lists). */
  const groupMembers = async (group: number) =>
    (await clusterMembers(await restUrls(group)))?.filter((m) => names(group).includes(m.name));

  /** The group's members once it has a running leader and every other member streams from it. */
  const settledGroup = (group: number, timeoutMs: number) =>
    waitFor(`group ${group}: a leader and streaming replicas`, timeoutMs, async () => {
      const members = await groupMembers(group);
      const leaders = members?.filter((m) => m.role === "leader") ?? [];
      const streaming = members?.filter((m) => m.role !== "leader" && m.state === "streaming") ?? [];
      // With synchronous replication only a synchronous standby may be promoted: wait until one is named.
      const synchronous = config.synchronousMode === "off" || members?.some((m) => /^(sync|quorum)_standby$/.test(m.role));
      const ok = members?.length === names(group).length && leaders.length === 1 && leaders[0].state === "running" &&
        streaming.length === members.length - 1 && synchronous;
      return ok ? members : undefined;
    });
  const leaderName = (members: ClusterMember[]) => members.find((m) => m.role === "leader")!.name;

  let booted = false;
  test.before(() => {
    const citus = citusSource();
    log(`Citus ${citus.version} from ${citus.path} (sha256 ${citus.sha256.slice(0, 12)}…, as pinned in scripts/install-citus.sh)`);
    log(`stand-ins: ${Object.entries(STAND_INS).map(([upstream, s]) => `${upstream} -> dpc-test/${s.target}:stand-in`).join("; ")}`);
    for (const note of Object.values(NO_STAND_IN)) log(note);
  });

  // A CI run keeps only what it printed: the containers' last lines when a test fails (the first
  // two failures: later ones often follow from the first).
  let failuresShown = 0;
  test.afterEach.always(async (t) => {
    if (t.passed || failuresShown >= 2) return;
    failuresShown++;
    for (const name of adapter.containerNames()) {
      const lines = await adapter.logs(name, 25).catch((e: Error) => `(no log: ${e.message})`);
      log(`----- ${name}, last 25 lines after "${t.title}" failed:\n${lines.trimEnd()}`);
    }
  });

  test.after.always(async () => {
    const problems = await adapter.teardown();
    const left = await adapter.leftovers().catch((e: Error) => [`could not list: ${e.message}`]);
    const stopped = process.env.DPC_DOCKER_KEEP_DAEMON ? true : stopEngine(log);
    log(`tear-down: ${problems.length + left.length === 0 ? "every container, network, volume and image tag removed" : [...problems, ...left].join("; ")}`);
    if (problems.length + left.length > 0 || !stopped) throw new Error(`tear-down left: ${[...problems, ...left].join("; ") || "dockerd running"}`);
  });

  test.serial("the declared containers boot and become healthy", async (t) => {
    const published = { pgbouncerPort: config.pgbouncerPort, haproxyReadWritePort: config.haproxyReadWritePort, haproxyReadOnlyPort: config.haproxyReadOnlyPort, prometheusPort: config.prometheusPort };
    const taken = await takenPorts(published);
    if (taken.length > 0) throw new Error(`host port(s) already in use, the test stack publishes them on 0.0.0.0: ${taken.join(", ")} (test/docker/stack.ts)`);
    const started = Date.now();
    const containers = await adapter.apply(registrations);
    const created = Date.now();
    for (const note of adapter.notRun) t.log(`not run: ${note}`);
    t.true(containers.length >= 10, containers.join(", "));
    const builds = Object.entries(adapter.timings.builds).map(([tag, s]) => `${tag} ${s.toFixed(1)} s`).join(", ");
    const healthy = await adapter.waitHealthy(300, containers);
    booted = true;
    const buildSeconds = Object.values(adapter.timings.builds).reduce((a, b) => a + b, 0);
    const summary = `image builds ${buildSeconds.toFixed(1)} s (${builds}); ${containers.length} containers created in ${((created - started) / 1000 - buildSeconds).toFixed(1)} s; boot-to-healthy ${healthy.toFixed(1)} s`;
    log(summary);
    t.log(summary);
  });

  test.serial("one leader per group, every other member streaming", async (t) => {
    t.true(booted, "the cluster did not boot");
    for (let group = 0; group < topology.groups.length; group++) {
      const members = await settledGroup(group, 120_000);
      t.log(`group ${group}: ${members.map((m) => `${m.name} ${m.role}/${m.state}`).join(", ")}`);
    }
  });

  test.serial("Citus: pg_dist_node lists every group's primary, as Patroni registered it", async (t) => {
    t.true(booted, "the cluster did not boot");
    const leaders = new Map<number, string>();
    for (let group = 0; group < topology.groups.length; group++) leaders.set(group, leaderName(await settledGroup(group, 60_000)));
    // Patroni registers worker primaries once their groups have leaders: poll until all are there.
    const primaries = await waitFor("pg_dist_node: a primary per group", 60_000, async () => {
      const found = await distPrimaries(adminUrl);
      return [...leaders].every(([group, name]) => found.get(group) === name) ? found : undefined;
    });
    t.deepEqual([...primaries.keys()], topology.groups.map((_, group) => group));
    const version = (await query(adminUrl, "SELECT extversion FROM pg_extension WHERE extname = 'citus'")).rows[0]?.extversion;
    t.regex(String(version), /^13\.0/);
    t.log(`Citus ${version}; pg_dist_node primaries: ${[...primaries].map(([g, n]) => `${g}=${n}`).join(", ")}`);
  });

  // The dynamic resources `pulumi up` runs once the containers exist; each kind has its check here.
  const SCHEMA = "pulumi-nodejs:dynamic/dpc:SchemaMigrations";
  const BENCHMARK = "pulumi-nodejs:dynamic/dpc:BenchmarkRun";
  const POSTGRES_CONFIG = "pulumi-nodejs:dynamic/dpc:PostgresConfig";
  const ROTATION = "pulumi-nodejs:dynamic/dpc:PasswordRotation";
  const REBALANCE = "pulumi-nodejs:dynamic/dpc:WorkerRebalance";
  const MEMBERSHIP = "pulumi-nodejs:dynamic/dpc:WorkerMembership";
  const CERTIFICATES = CERTIFICATES_TYPE;
  const deferred = (type: string) => adapter.deferred.filter((r) => r.type === type);
  type SchemaInputs = Parameters<NonNullable<typeof schemaProvider.update>>[2];
  let schemaState: SchemaInputs | undefined;

  test.serial("every dynamic resource the program declares has its check here", (t) => {
    t.true(booted, "the cluster did not boot");
    const unhandled = adapter.deferred.filter((r) => ![SCHEMA, BENCHMARK, POSTGRES_CONFIG, ROTATION, REBALANCE, MEMBERSHIP, CERTIFICATES].includes(r.type));
    t.deepEqual(unhandled.map((r) => `${r.type} ${r.name}`), []);
    t.is(deferred(SCHEMA).length, 1);
  });

  test.serial("the ClusterCertificates provider issues the plan whose certificates the containers run with; a second run issues nothing", async (t) => {
    t.true(booted, "the cluster did not boot");
    // The containers got the certificates the mocks issued with the provider's own functions
    // (declared.ts); here the provider itself, as `pulumi up` runs it, on the same inputs.
    const [resource] = deferred(CERTIFICATES);
    const inputs = resource.inputs as { name: string; plan: { id: string }[] };
    const created = (await certificatesProvider.create(inputs)).outs as { ca: string; certificates: Record<string, { cert: string }> };
    t.deepEqual(Object.keys(created.certificates).sort(), inputs.plan.map((s) => s.id).sort());
    t.deepEqual(Object.keys(created.certificates).sort(), Object.keys(resource.outputs.certificates as object).sort());
    t.false((await certificatesProvider.diff!("id", created, inputs)).changes);
    const again = (await certificatesProvider.update!("id", created, inputs)).outs as typeof created;
    t.deepEqual(again.certificates, created.certificates);
    // What the running containers present: PgBouncer's certificate, verified by the client path tests
    // (verify-full); here its issuer is the stack's CA.
    t.is(resource.outputs.ca, ca);
  });

  test.serial("the Schema resource's provider applies the migrations on Citus (twice: the second run applies nothing)", async (t) => {
    t.true(booted, "the cluster did not boot");
    // What `pulumi up` runs: the provider, with the resource's own inputs (HAProxy's and PgBouncer's published ports).
    const inputs = deferred(SCHEMA)[0].inputs as unknown as SchemaInputs;
    t.log(`migrations through ${String(inputs.connectionString).replace(/:[^:@/]*@/, ":***@")}`);
    const first = (await schemaProvider.create(inputs)).outs as ApplyResult;
    t.true(first.citus, "the citus extension exists");
    t.true(first.applied.length > 0);
    t.true(first.notes.includes(RECONNECT_NOTE), first.notes.join("; "));
    const second = (await schemaProvider.update!(`${config.clusterName}-schema`, inputs, inputs)).outs as ApplyResult;
    t.deepEqual(second.applied, []);
    schemaState = inputs;
    t.log(`migrations ${first.version}: applied ${first.applied.join(", ")}; ${first.notes.join("; ")}`);
  });

  // After the Schema step, as in `pulumi up`: PgBouncer checks the application's login through the
  // lookup role (auth_query) that the migrations create.
  test.serial("PgBouncer -> HAProxy -> the coordinator primary answers on the published port", async (t) => {
    t.true(booted, "the cluster did not boot");
    t.truthy(schemaState, "the Schema resource did not apply");
    const leader = leaderName(await settledGroup(0, 60_000));
    const row = (await query(appUrl, "SELECT host(inet_server_addr()) AS addr, pg_is_in_recovery() AS recovery, current_user AS who")).rows[0];
    t.false(row.recovery);
    t.is(row.who, ROLES.app);
    t.is(row.addr, await adapter.ipOf(leader), "answered by the leader's container");
  });

  test.serial("Citus: the distributed tables' shards are spread over every worker group, reference tables on all", async (t) => {
    t.true(booted, "the cluster did not boot");
    const tables = (await query(adminUrl, `SELECT logicalrelid::text AS name, partmethod FROM pg_dist_partition WHERE logicalrelid::text LIKE $1 ORDER BY 1`, [`${APP_SCHEMA}.%`])).rows as { name: string; partmethod: string }[];
    const distributed = tables.filter((r) => r.partmethod === "h");
    const reference = tables.filter((r) => r.partmethod === "n");
    t.true(distributed.length >= 4 && reference.length >= 1, JSON.stringify(tables));
    const workers = topology.groups.slice(1).map((_, i) => i + 1);
    for (const { name } of distributed) {
      const placements = await placementsPerGroup(adminUrl, name);
      t.deepEqual([...placements.keys()], workers, `${name}: shards on every worker group and none on the coordinator`);
      t.is([...placements.values()].reduce((a, b) => a + b, 0), config.shardCount, name);
    }
    for (const { name } of reference) {
      const groups = [...(await placementsPerGroup(adminUrl, name)).keys()];
      t.true(workers.every((w) => groups.includes(w)), `${name}: a placement on every worker group (${groups})`);
    }
    const first = await placementsPerGroup(adminUrl, distributed[0].name);
    t.log(`${distributed.length} distributed tables, ${reference.length} reference tables; ${distributed[0].name}: ${[...first].map(([g, n]) => `group ${g} ${n} shards`).join(", ")}`);
  });

  test.serial("a new hnswEfSearch applied by the Schema step reaches a pooled PgBouncer session opened before (RECONNECT)", async (t) => {
    t.true(booted, "the cluster did not boot");
    t.truthy(schemaState, "the Schema resource did not apply");
    const pooled = quietClient({ connectionString: appUrl });
    pooled.on("error", () => undefined);
    await pooled.connect();
    const efSearch = async () => String((await pooled.query("SHOW hnsw.ef_search")).rows[0]["hnsw.ef_search"]);
    try {
      t.is(await efSearch(), String(config.hnswEfSearch));
      // The fault: the same change without RECONNECT leaves the pooled server session on the old value.
      const stale = parseClusterConfig({ ...DOCKER_TEST_STACK, hnswEfSearch: String(config.hnswEfSearch * 2) });
      await applyMigrations(adminUrl, stale);
      t.is((await query(adminUrl, "SHOW hnsw.ef_search")).rows[0]["hnsw.ef_search"], String(stale.hnswEfSearch), "a new session has the new value");
      const before = await efSearch();
      t.is(before, String(config.hnswEfSearch), "without RECONNECT the pooled session keeps the value it started with");
      // The fix: `pulumi up` with a changed hnswEfSearch runs the Schema provider's update.
      const changed = parseClusterConfig({ ...DOCKER_TEST_STACK, hnswEfSearch: String(config.hnswEfSearch * 3) });
      const news = { ...schemaState!, config: changed, migrationsFingerprint: migrationsFingerprint(changed) };
      t.deepEqual(await schemaProvider.diff!("id", schemaState!, news), { changes: true });
      const result = (await schemaProvider.update!("id", schemaState!, news)).outs as ApplyResult;
      t.true(result.notes.includes(RECONNECT_NOTE));
      t.is(await efSearch(), String(changed.hnswEfSearch), "the pooled session reads the new value");
      t.log(`hnsw.ef_search through one PgBouncer client: ${config.hnswEfSearch}; after ALTER DATABASE alone still ${before}; after the Schema step (RECONNECT) ${changed.hnswEfSearch}`);
      schemaState = news;
    } finally {
      await pooled.end().catch(() => undefined);
    }
  });

  test.serial("day two on Docker: the WorkerRebalance/WorkerMembership, PostgresConfig and PasswordRotation providers against the containers", async (t) => {
    t.true(booted, "the cluster did not boot");
    // Scaling: on a balanced cluster the rebalance moves nothing; each membership is a record.
    const rebalance = (await workerRebalanceProvider.create(deferred(REBALANCE)[0].inputs as never)).outs as { moves: number };
    t.is(rebalance.moves, 0);
    t.is(deferred(MEMBERSHIP).length, topology.groups.length - 1);
    for (const r of deferred(MEMBERSHIP)) t.deepEqual((await workerMembershipProvider.create(r.inputs as never)).outs, r.inputs);

    // PostgresConfig: the mocks have no container addresses; the provider reaches each Patroni REST
    // API at the container's address, as `pulumi up` on the Docker host does.
    const declared = deferred(POSTGRES_CONFIG)[0].inputs as unknown as PostgresConfigInputs;
    const inputs: PostgresConfigInputs = {
      ...declared,
      groups: await Promise.all(declared.groups.map(async (g) => ({ ...g, members: await Promise.all(g.members.map(async (m) => ({ ...m, restUrl: `https://${await adapter.ipOf(m.name)}:${PORTS.patroniRest}` }))) }))),
    };
    await postgresConfigProvider.create(inputs);
    const changed = { ...inputs, parameters: { ...inputs.parameters, work_mem: "12MB" } };
    t.deepEqual(await postgresConfigProvider.diff!("id", inputs, changed), { changes: true });
    const outcome = ((await postgresConfigProvider.update!("id", inputs, changed)).outs as { outcome: { switchovers: string[]; changed: string[] }[] }).outcome;
    t.true(outcome.every((g) => g.switchovers.length === 0), "a reload-only change needs no switchover");
    t.true(outcome.every((g) => g.changed.includes("work_mem")), JSON.stringify(outcome));
    for (const name of topology.groups.flat().map((n) => n.name)) {
      const shown = await waitFor(`${name}: work_mem 12MB`, 30_000, async () => {
        const r = await adapter.exec(name, ["psql", "-XAtc", "SHOW work_mem", "-d", "postgres"], "postgres");
        return r.output.trim() === "12MB" ? r.output.trim() : undefined;
      });
      t.is(shown, "12MB", name);
    }
    await postgresConfigProvider.update!("id", changed, inputs);

    // PasswordRotation: app's password changed and changed back; each time the new one logs in
    // (directly, through HAProxy) and the old one is refused.
    const rotation = deferred(ROTATION)[0].inputs as unknown as PasswordRotationInputs;
    t.deepEqual(((await passwordRotationProvider.create(rotation)).outs as { rotated: string[] }).rotated, []);
    const rotated = { ...rotation, passwords: { ...rotation.passwords, app: `${passwords.app}-rotated` } };
    const direct = (password: string) => verifyFullUrl(`postgresql://${ROLES.app}:${encodeURIComponent(password)}@127.0.0.1:${config.haproxyReadWritePort}/${config.database}`, ca);
    for (const [olds, news] of [[rotation, rotated], [rotated, rotation]] as const) {
      t.deepEqual(((await passwordRotationProvider.update!("id", olds, news)).outs as { rotated: string[] }).rotated, ["app"]);
      t.is((await query(direct(news.passwords.app), "SELECT 1 AS one")).rows[0].one, 1);
      const refused = await query(direct(olds.passwords.app), "SELECT 1").then(() => "accepted", (e: { code?: string }) => e.code);
      t.is(refused, "28P01", "the old app password is refused");
    }
    t.log(`rebalance: ${rebalance.moves} moves; work_mem 12MB on every node by reload (no switchover) and back; app password rotated and back`);
  });

  // The pooler as drivers meet it, through the published PgBouncer port (as on the local cluster).
  // Both URLs carry sslmode=verify-full and the CA file: node-postgres, pgbench and psql verify PgBouncer.
  registerPoolerChecks(test, { appUrl, sessionUrl: verifyFullUrl(plainUrl("app", config.pgbouncerPort, sessionPoolDatabase(config)), ca) }, () => booted);

  test.serial("the benchmark runs in quick mode at the BenchmarkRun resource's endpoint (PgBouncer), on distributed tables", async (t) => {
    t.true(booted, "the cluster did not boot");
    const run = deferred(BENCHMARK)[0]?.inputs;
    const target = run ? verifyFullUrl(String(run.url), ca) : appUrl;
    const pgbouncer = `${topology.scope}-pgbouncer`;
    const started = (await adapter.inspect(pgbouncer)).State.StartedAt;
    // Smaller than quick's 5,000 rows on purpose: this proves the path; the local cluster gives the figures.
    const summary = await runPostDeployBenchmark(target, "quick", { rows: 2000, skipPgbench: true }).finally(async () => {
      // PgBouncer checks every login with auth_query: it must come through the benchmark's many logins.
      const state = (await adapter.inspect(pgbouncer)).State;
      if (state.StartedAt !== started || !state.Running) t.log(`${pgbouncer} restarted or stopped during the benchmark (${JSON.stringify(state)}); its log ends:\n${await adapter.logs(pgbouncer, 40)}`);
    });
    t.is((await adapter.inspect(pgbouncer)).State.StartedAt, started, "PgBouncer ran throughout the benchmark");
    t.true(summary.scenarios.length > 0);
    t.log(`benchmark (quick, 2000 rows) verdict ${summary.verdict}: ` + summary.scenarios.map((s) => `${s.id} p95 ${s.p95Ms} ms`).join("; "));
  });

  test.serial("/dev/shm is sized for maintenance_work_mem: a parallel HNSW build on a table over 64 MiB succeeds in a container", async (t) => {
    t.true(booted, "the cluster did not boot");
    const leader = leaderName(await settledGroup(0, 60_000));
    const shmMb = sharedMemoryMb(config);
    t.is((await adapter.inspect(leader)).HostConfig.ShmSize, shmMb * 1024 * 1024);
    const df = await adapter.exec(leader, ["df", "-m", "--output=size", "/dev/shm"]);
    t.is(Number(df.output.trim().split("\n").pop()), shmMb, df.output);

    const client = quietClient({ connectionString: adminUrl });
    client.on("error", () => undefined);
    const notices: string[] = [];
    client.on("notice", (notice) => notices.push(notice.message ?? ""));
    await client.connect();
    try {
      const started = Date.now();
      await client.query("DROP TABLE IF EXISTS shm_hnsw_build");
      await client.query(`CREATE TABLE shm_hnsw_build (id integer, embedding vector(${config.embeddingDimensions}))`);
      await client.query(
        `INSERT INTO shm_hnsw_build SELECT i, (SELECT array_agg(random()::real) FROM generate_series(1, ${config.embeddingDimensions}) WHERE i > 0)::vector
         FROM generate_series(1, 48000) AS i`,
      );
      const bytes = Number((await client.query("SELECT pg_total_relation_size('shm_hnsw_build') AS b")).rows[0].b);
      t.true(bytes > 64 * 1024 * 1024, `table of ${bytes} bytes`);
      const loaded = Date.now();
      const build = (mwm: string) =>
        client.query(`SET maintenance_work_mem = '${mwm}'`)
          .then(() => client.query("SET client_min_messages = debug1"))
          .then(() => client.query("CREATE INDEX shm_hnsw_build_idx ON shm_hnsw_build USING hnsw (embedding vector_l2_ops) WITH (m = 8, ef_construction = 32)"))
          .finally(() => client.query("RESET client_min_messages"));
      // The node's own maintenance_work_mem: the graph area fits in /dev/shm.
      await build(`${maintenanceWorkMemMb(config)}MB`);
      const built = Date.now();
      const workers = notices.map((n) => /using (\d+) parallel workers/.exec(n)?.[1]).find(Boolean);
      t.true(Number(workers) >= 1, `pgvector used parallel workers: ${notices.filter((n) => /parallel/.test(n)).join(" | ") || "no notice"}`);
      // The fault, reproduced: a graph area larger than /dev/shm fails the same build (as 64 MiB did).
      await client.query("DROP INDEX shm_hnsw_build_idx");
      const tooLarge = await build(`${shmMb + 64}MB`).then(() => "built", (e: Error) => e.message);
      t.regex(tooLarge, /could not resize shared memory segment|No space left on device/);
      const summary = `parallel HNSW build (${workers} worker) on ${(bytes / 1048576).toFixed(0)} MiB (48,000 x ${config.embeddingDimensions}) with maintenance_work_mem ${maintenanceWorkMemMb(config)} MB and /dev/shm ${shmMb} MiB: ` +
        `built in ${((built - loaded) / 1000).toFixed(1)} s (load ${((loaded - started) / 1000).toFixed(1)} s); with maintenance_work_mem above /dev/shm: "${tooLarge.split("\n")[0]}"`;
      log(summary);
      t.log(summary);
    } finally {
      await client.query("DROP TABLE IF EXISTS shm_hnsw_build").catch(() => undefined);
      await client.end().catch(() => undefined);
    }
  });

  test.serial("every uploaded secret file is owned by the service that reads it, mode 0600/0700, unreadable by others", async (t) => {
    t.true(booted, "the cluster did not boot");
    const containers = registrations.filter((r) => r.type === "docker:index/container:Container" && adapter.containers.includes(String(r.inputs.name)));
    let checked = 0;
    const lines: string[] = [];
    for (const container of containers) {
      const name = String(container.inputs.name);
      if (!(await adapter.inspect(name)).State.Running) continue;
      const uploads = (container.inputs.uploads as { file: string; permissions: string }[]).filter((u) => u.permissions === "0600" || u.permissions === "0700");
      if (uploads.length === 0) continue;
      // The service is the container's PID 1 (the database entrypoint drops to postgres with setpriv, keeping it).
      const status = (await adapter.exec(name, ["cat", "/proc/1/status"])).output;
      const uid = /^Uid:\s+(\d+)/m.exec(status)![1];
      const gid = /^Gid:\s+(\d+)/m.exec(status)![1];
      for (const upload of uploads) {
        const stat = await adapter.exec(name, ["stat", "-c", "%u:%g %a", upload.file]);
        t.is(stat.output.trim(), `${uid}:${gid} ${upload.permissions.replace(/^0/, "")}`, `${name}:${upload.file}`);
        const reads = await adapter.exec(name, ["sh", "-c", `head -c 1 ${upload.file} >/dev/null`], `${uid}:${gid}`);
        t.is(reads.code, 0, `${name}: the service (uid ${uid}) reads ${upload.file}: ${reads.output}`);
        const other = await adapter.exec(name, ["sh", "-c", `head -c 1 ${upload.file} >/dev/null`], "4242:4242");
        t.not(other.code, 0, `${name}: another user reads ${upload.file}`);
        checked++;
      }
      lines.push(`${name} (uid ${uid}): ${uploads.map((u) => u.file).join(", ")}`);
    }
    t.true(checked >= topology.groups.flat().length, `${checked} files checked`);
    t.log(`${checked} secret files checked: ${lines.join("; ")}`);
  });

  test.serial("PostgreSQL 17 in a database container: a standby whose newer-timeline segment file holds less than it replayed PANICs at promotion; with the shipped timeline guard's pre_promote it promotes with every replayed row", async (t) => {
    t.true(booted, "the cluster did not boot");
    // In a worker group's standby, on its own Unix sockets (test/cluster/_partial-segment.ts): the
    // container's PostgreSQL and Python, the guard rendered as the containers' but for the scenario's paths.
    const members = await settledGroup(1, 120_000);
    const name = members.find((m) => m.role !== "leader")!.name;
    const node = topology.groups[1].find((n) => n.name === name)!;
    const layout = containerLayout(config).postgres(node);
    const host: ScenarioHost = { run: (command) => adapter.exec(name, command, "postgres"), binDir: layout.binDir, root: "/tmp/dpc-partial-segment" };
    try {
      const r = await runPartialSegmentScenario(host, config, topology, node, containerAddressing(config, topology, dockerHostNaming), layout);
      t.false(r.unguardedRunning, "without the guard PostgreSQL stops at promotion");
      t.regex(r.panic ?? "", new RegExp(`PANIC:\\s+invalid magic number 0000 in (log|WAL) segment ${r.newer}`));
      t.is(r.guardExit, 0, r.guardLog);
      t.regex(r.guardLog, new RegExp(`${r.newer} holds ${r.written} bytes of the ${r.replayedOffset} this member replayed from 00000001${r.newer.slice(8)}: set aside`));
      t.true(r.partialKept && r.promoted, r.promoteOutput);
      t.is(r.timeline, 3);
      t.deepEqual([r.rows, r.maxId], [4000, 4000], "every row it had replayed");
      t.true(r.writableAfter, "it takes writes");
      t.log(`${name} (${layout.binDir}): C replayed to ${r.replayedLsn}, B forked at ${r.fork}, ${r.newer} held ${r.written} of ${r.replayedOffset} bytes; unguarded: ${r.panic}; guarded: timeline ${r.timeline}, ${r.rows} rows (${r.seconds.toFixed(1)} s)`);
    } finally {
      await cleanUpPartialSegmentScenario(host);
    }
  });

  test.serial("HAProxy routes to a database container again after it comes back with another address", async (t) => {
    t.true(booted, "the cluster did not boot");
    const members = await settledGroup(0, 60_000);
    const replica = members.find((m) => m.role !== "leader")!.name;
    const oldIp = await adapter.ipOf(replica);
    const newIp = config.networkSubnet.replace(/\.0\/\d+$/, ".250");
    await adapter.docker.getContainer(replica).stop({ t: 10 });
    await adapter.readdress(replica, newIp);
    await adapter.docker.getContainer(replica).start();
    t.is(await adapter.ipOf(replica), newIp);
    const started = Date.now();
    await settledGroup(0, 120_000);
    // HAProxy's read-only listener balances over the replicas: the moved one must answer again.
    const answered = await waitFor(`HAProxy routes to ${replica} at ${newIp}`, 60_000, async () => {
      const row = (await query(readOnlyUrl, "SELECT host(inet_server_addr()) AS addr")).rows[0];
      return row.addr === newIp ? Date.now() : undefined;
    });
    const summary = `${replica} moved from ${oldIp} to ${newIp}: HAProxy routed to it ${((answered - started) / 1000).toFixed(1)} s after it started again`;
    log(summary);
    t.log(summary);
  });

  /**
   * What a container logged (Patroni and PostgreSQL, both on its stdout/stderr) since `killedAt`,
   * the lines matching `pattern`, each with its seconds after the kill: where a failover's time goes
   * inside Docker. `docker logs` frames (8-byte headers) are demultiplexed.
   */
  async function logLinesSince(container: string, killedAt: number, pattern: RegExp, limit: number): Promise<string[]> {
    const raw = (await adapter.docker.getContainer(container).logs({ stdout: true, stderr: true, since: Math.floor(killedAt / 1000), timestamps: true, follow: false })) as unknown as Buffer;
    let text = "";
    for (let offset = 0; offset + 8 <= raw.length; ) {
      const size = raw.readUInt32BE(offset + 4);
      text += raw.subarray(offset + 8, offset + 8 + size).toString("utf8");
      offset += 8 + size;
    }
    return text
      .split("\n")
      .filter((line) => pattern.test(line))
      .slice(0, limit)
      .map((line) => {
        const text = line.slice(line.indexOf(" ") + 1);
        // The time the line carries (Patroni "2026-12-01 10:17:00,865", PostgreSQL/PgBouncer "... 10:17:01.126 UTC"),
        // else Docker's: Patroni's stdout is buffered, so Docker's stamp can be late.
        const own = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)[,.](\d{3})/.exec(text);
        const stamp = own ? Date.parse(`${own[1]}T${own[2]}.${own[3]}Z`) : Date.parse(line.slice(0, line.indexOf(" ")));
        return `+${((stamp - killedAt) / 1000).toFixed(2)} s ${text.slice(0, 200)}`;
      });
  }

  /**
   * What the new leader's Patroni and PostgreSQL logged about taking over (the replica's idle loops
   * left out), from `fromSeconds` after `killedAt` (a failover: the leader key's ttl passes first).
   */
  const patroniEvents = async (container: string, killedAt: number, fromSeconds = 0) =>
    (await logLinesSince(container, killedAt, /^\S+ (?!.*no action\. I am)(?!.*Exception happened)(?!\s).*(promot|lock|leader race|healthiest|following|failover|synchronous|demot|wal_receiver|citus|request failed|resolve|vote|recovery complete|timeline)/i, 400))
      .filter((line) => Number(/^\+(-?[\d.]+) s/.exec(line)?.[1] ?? 0) >= fromSeconds)
      .slice(0, 30);

  /** What the coordinator's leader logged about the worker group's move (pg_dist_node, lock waits, connections to the dead worker). */
  const coordinatorEvents = (container: string, killedAt: number) =>
    logLinesSince(container, killedAt, /^\S+ (?!.*could not translate host name)(?!\s).*(citus|pg_dist|update_node|lock|terminat|could not|timeout|timed out|connection to|worker)/i, 30);

  /** What PgBouncer and HAProxy logged about their servers (logins, checks): the client path after a coordinator's failover. */
  const routerEvents = async (killedAt: number, fromSeconds = 19.5) => [
    ...(await logLinesSince(`${topology.scope}-haproxy`, killedAt, /is (UP|DOWN)|no server available/i, 12)).map((line) => `haproxy: ${line}`),
    ...(await logLinesSince(`${topology.scope}-pgbouncer`, killedAt, /login attempt failed|closing because: (server conn crashed|connect failed|server login)|new connection to server/i, 2000))
      .filter((line) => Number(/^\+(-?[\d.]+) s/.exec(line)?.[1] ?? 0) >= fromSeconds)
      .slice(0, 16)
      .map((line) => `pgbouncer: ${line}`),
  ];

  /** The writer's failures after the kill, consecutive equal messages folded: what the client saw, when. */
  function writerFailures(failures: { at: number; message: string }[], killedAt: number): string[] {
    const lines: string[] = [];
    let last = "";
    let count = 0;
    for (const f of failures.filter((f) => f.at >= killedAt)) {
      const message = f.message.slice(0, 140);
      if (message === last) {
        count++;
        continue;
      }
      if (count > 1) lines.push(`  (x${count})`);
      lines.push(`+${((f.at - killedAt) / 1000).toFixed(2)} s ${message}`);
      last = message;
      count = 1;
    }
    if (count > 1) lines.push(`  (x${count})`);
    return lines;
  }

  /**
   * Kills the primary of `group` under continuous writes through PgBouncer and measures the outage.
   * How it dies decides who brings it back (checked in the Docker docs and here): `docker kill`
   * counts as stopped by the user, so no restart policy applies; the container's main process dying
   * on its own (SIGKILL of its PID 1 from the host) is a crash the policy restarts. For a worker
   * group the writes go to a distributed table of one shard, and the group holding it is the one killed.
   */
  async function killUnderWrites(target: "coordinator" | "worker", how: "crash" | "docker kill", note: (line: string) => void) {
    const table = `docker_${target}_${how === "crash" ? "crash" : "kill"}_writes`;
    // Distributed on its bucket column (Citus is there): every row of one bucket goes to one shard.
    await ContinuousWriter.createTable(adminUrl, table, ROLES.app);
    const group = target === "worker" ? 1 : 0;
    // For the worker case, a bucket whose shard worker group 1 holds: every write goes there.
    const bucket = target === "worker" ? await ContinuousWriter.bucketOnGroup(adminUrl, table, group) : DEFAULT_BUCKET;
    const before = await settledGroup(group, 120_000);
    const oldLeader = leaderName(before);
    if (target === "worker") {
      const primaries = await distPrimaries(adminUrl);
      if (primaries.get(group) !== oldLeader) throw new Error(`pg_dist_node names ${primaries.get(group)} for group ${group}, Patroni ${oldLeader}`);
    }
    const container = await adapter.inspect(oldLeader);

    const writer = new ContinuousWriter({ table, bucket, connectionString: async () => appUrl });
    writer.start();
    let result: Awaited<ReturnType<ContinuousWriter["stop"]>>;
    let killedAt = 0;
    try {
      await waitFor("writes before the kill", 15_000, async () => (writer.acknowledgedCount >= 50 ? true : undefined));
      killedAt = Date.now();
      if (how === "crash") process.kill(container.State.Pid, "SIGKILL");
      else await adapter.docker.getContainer(oldLeader).kill({ signal: "SIGKILL" });
      await waitFor("writes through PgBouncer after the kill", 120_000, async () => writer.recoveredAfter(killedAt));
      await sleep(2000); // keep writing for a moment
    } finally {
      result = await writer.stop();
    }
    const leaderAfter = (await groupMembers(group))?.find((m) => m.role === "leader" && m.state === "running")?.name;
    if (leaderAfter && how === "docker kill") {
      for (const line of await patroniEvents(leaderAfter, killedAt, 15)) note(`  ${leaderAfter}: ${line}`);
      if (target === "worker") {
        const coordinator = (await groupMembers(0))?.find((m) => m.role === "leader")?.name;
        if (coordinator) for (const line of await coordinatorEvents(coordinator, killedAt)) note(`  ${coordinator}: ${line}`);
      } else {
        for (const line of await routerEvents(killedAt)) note(`  ${line}`);
      }
    }
    // A crash: the container restarts and keeps its leader key; what the client path saw meanwhile.
    if (how === "crash") for (const line of await routerEvents(killedAt, 0)) note(`  ${line}`);
    for (const line of writerFailures(result.failures, killedAt)) note(`  writer: ${line}`);
    const distAfter = target === "worker" ? (await distPrimaries(adminUrl)).get(group) : undefined;
    if (how === "docker kill") {
      // A stopped container stays stopped; `pulumi up` (the provider's must_run) starts it again.
      note(`restart policy after docker kill: container ${(await adapter.inspect(oldLeader)).State.Status}; starting it as pulumi up would`);
      await adapter.docker.getContainer(oldLeader).start();
    }
    const restarted = await waitFor("the container running again", 60_000, async () => {
      const info = await adapter.inspect(oldLeader);
      return info.State.Running ? info : undefined;
    });
    const members = await settledGroup(group, 180_000);
    const back = members.find((m) => m.name === oldLeader)!;
    return {
      group,
      oldLeader,
      leaderAfter,
      distAfter,
      back,
      restartCount: restarted.RestartCount - container.RestartCount,
      secondsToFirstWrite: (writer.recoveredAfter(killedAt)! - killedAt) / 1000,
      secondsToSettled: (Date.now() - killedAt) / 1000,
      acknowledged: result.acknowledged.length,
      errors: result.errors,
      lost: await missingWrites(adminUrl, table, result.acknowledged, bucket),
    };
  }

  test.serial("docker kill of a worker group's primary under distributed writes: failover, pg_dist_node updated, no acknowledged write lost, it rejoins", async (t) => {
    t.true(booted, "the cluster did not boot");
    const r = await killUnderWrites("worker", "docker kill", (line) => t.log(line));
    const summary =
      `worker failover in Docker (docker kill of ${r.oldLeader}, group ${r.group}): new leader ${r.leaderAfter}, pg_dist_node now ${r.distAfter}; first write through ` +
      `PgBouncer ${r.secondsToFirstWrite.toFixed(1)} s after the kill; ${r.acknowledged} writes acknowledged, ${r.errors} errors, ${r.lost.length} lost; ` +
      `restarted by docker start: ${r.oldLeader} ${r.back.role}/${r.back.state}, group settled ${r.secondsToSettled.toFixed(1)} s after the kill`;
    log(summary);
    t.log(summary);
    t.truthy(r.leaderAfter);
    t.not(r.leaderAfter, r.oldLeader, "no failover");
    t.is(r.distAfter, r.leaderAfter, "pg_dist_node names the new primary");
    t.not(r.back.role, "leader");
    t.deepEqual(r.lost, [], "acknowledged writes lost");
  });

  test.serial("a crash of the coordinator primary's container under writes: restart policy, no acknowledged write lost", async (t) => {
    t.true(booted, "the cluster did not boot");
    const r = await killUnderWrites("coordinator", "crash", (line) => t.log(line));
    const summary =
      `crash in Docker (SIGKILL of ${r.oldLeader}'s PID 1): restart policy restarted it ${r.restartCount}x; first write through ` +
      `PgBouncer ${r.secondsToFirstWrite.toFixed(1)} s after the kill; ${r.acknowledged} writes acknowledged, ${r.errors} errors, ` +
      `${r.lost.length} lost; leader after: ${r.leaderAfter} (back within the leader key's TTL, it keeps its lock); ` +
      `${r.oldLeader} ${r.back.role}/${r.back.state}, group settled ${r.secondsToSettled.toFixed(1)} s after the kill`;
    log(summary);
    t.log(summary);
    t.true(r.restartCount >= 1, "the restart policy did not restart the container");
    t.deepEqual(r.lost, [], "acknowledged writes lost");
  });

  test.serial("docker kill of the coordinator primary under writes: failover, no acknowledged write lost, it rejoins as a replica", async (t) => {
    t.true(booted, "the cluster did not boot");
    const r = await killUnderWrites("coordinator", "docker kill", (line) => t.log(line));
    const summary =
      `coordinator failover in Docker (docker kill of ${r.oldLeader}): new leader ${r.leaderAfter}; first write through PgBouncer ` +
      `${r.secondsToFirstWrite.toFixed(1)} s after the kill; ${r.acknowledged} writes acknowledged, ${r.errors} errors, ${r.lost.length} lost; ` +
      `restarted by docker start: ${r.oldLeader} ${r.back.role}/${r.back.state}, group settled ${r.secondsToSettled.toFixed(1)} s after the kill`;
    log(summary);
    t.log(summary);
    t.truthy(r.leaderAfter);
    t.not(r.leaderAfter, r.oldLeader, "no failover");
    t.not(r.back.role, "leader");
    t.deepEqual(r.lost, [], "acknowledged writes lost");
  });

  /** The containers as they run now (by name), and the stack they were declared from: the rolling tests change them. */
  const deployedContainers = new Map(registrations.filter((r) => r.type === "docker:index/container:Container").map((r) => [String(r.inputs.name), r]));
  let currentStack: Record<string, string> = DOCKER_TEST_STACK;

  // After the checks that read the first declaration's sizes (/dev/shm), before the destroy.
  test.serial("rolling replacement: the stack declared again with databaseMemoryMb changed, under writes through PgBouncer: one database container at a time, replicas first, one switchover per group, no failed write", async (t) => {
    t.true(booted, "the cluster did not boot");
    const table = "docker_rolling_writes";
    await ContinuousWriter.createTable(adminUrl, table, ROLES.app);
    const before = new Map<number, ClusterMember[]>();
    for (let group = 0; group < topology.groups.length; group++) before.set(group, await settledGroup(group, 120_000));
    const deployed = deployedContainers;
    const memoryMb = config.databaseMemoryMb + 128;
    const changedStack = { ...DOCKER_TEST_STACK, databaseMemoryMb: String(memoryMb) };
    currentStack = changedStack;
    const started = Date.now();
    const at = () => `+${((Date.now() - started) / 1000).toFixed(1)} s`;
    const timeline: string[] = [];
    const replaced: string[] = [];
    const replacements: Promise<unknown>[] = [];
    const rolls: RollingReplacement[] = [];
    let redeclared: Registration[] = [];
    useReplacementEnvironment({ onCreate: (roll) => rolls.push(roll) });
    const writer = new ContinuousWriter({ table, bucket: DEFAULT_BUCKET, connectionString: async () => appUrl });
    writer.start();
    let result: Awaited<ReturnType<ContinuousWriter["stop"]>>;
    try {
      await waitFor("writes before the change", 15_000, async () => (writer.acknowledgedCount >= 20 ? true : undefined));
      // The engine's side of `pulumi up`: a container registered with other inputs than it runs is
      // replaced (deleteBeforeReplace), at once; one registered unchanged is left alone.
      const onRegistration = (r: Registration) => {
        if (r.type !== "docker:index/container:Container") return;
        const old = deployed.get(String(r.inputs.name));
        if (!old || isDeepStrictEqual(old.inputs, r.inputs)) return;
        replaced.push(r.name);
        timeline.push(`${at()} ${r.name} registered: replacing`);
        replacements.push(
          adapter.replaceContainer(old, r).then(({ stopSeconds }) => {
            timeline.push(`${at()} ${r.name} running again (old container stopped in ${stopSeconds.toFixed(1)} s)`);
            deployed.set(String(r.inputs.name), r);
          }),
        );
      };
      redeclared = (await declareCluster(PROJECT, changedStack, passwords, onRegistration)).registrations;
      await waitFor("the program's rolling replacement", 30_000, async () => (rolls.length > 0 ? true : undefined));
      const reports = await rolls[0].done();
      await Promise.all(replacements);
      for (let group = 0; group < topology.groups.length; group++) await settledGroup(group, 180_000);
      await sleep(2000); // keep writing for a moment
      for (const report of reports) {
        timeline.push(`group ${report.group}: replaced ${report.restarted.join(", ")}; switchovers ${report.switchovers.map((s) => `${s.from} -> ${s.to} at +${((s.startedAt - started) / 1000).toFixed(1)} s, ${s.seconds.toFixed(1)} s${s.paused ? " (PgBouncer paused)" : ""}`).join(", ")}`);
        // Where a slow switchover's time went, from the new leader's Patroni log.
        for (const s of report.switchovers.filter((x) => x.seconds > 5)) {
          for (const line of await patroniEvents(s.to, s.startedAt)) timeline.push(`  ${s.to}: ${line}`);
        }
      }
      t.deepEqual(reports.map((r) => r.switchovers.length), topology.groups.map(() => 1), "one switchover per group");
    } finally {
      result = await writer.stop();
      useReplacementEnvironment(undefined);
    }
    for (const line of timeline) t.log(line);
    const databaseNames = topology.groups.flat().map((n) => n.name);
    t.deepEqual([...replaced].sort(), [...databaseNames].sort(), "every database container replaced, nothing else");
    // One at a time: each replaced container registered only after the previous one ran again.
    const order = timeline.filter((l) => / registered: replacing$/.test(l) || / running again /.test(l)).map((l) => l.split(" ")[2] + (l.includes("registered") ? " registered" : " running"));
    t.deepEqual(order, replaced.flatMap((name) => [`${name} registered`, `${name} running`]), "one container at a time");
    for (let group = 0; group < topology.groups.length; group++) {
      const members = names(group);
      const positions = members.map((n) => replaced.indexOf(n));
      const oldLeader = before.get(group)!.find((m) => m.role === "leader")!.name;
      t.is(replaced.indexOf(oldLeader), Math.max(...positions), `group ${group}: its former leader replaced last`);
      if (group > 0) t.true(Math.min(...positions) > Math.max(...names(group - 1).map((n) => replaced.indexOf(n))), `group ${group} after group ${group - 1}`);
      const after = await settledGroup(group, 60_000);
      const timelineBefore = Math.max(...before.get(group)!.map((m) => Number(m.timeline ?? 0)));
      const timelineAfter = Math.max(...after.map((m) => Number(m.timeline ?? 0)));
      t.is(timelineAfter - timelineBefore, 1, `group ${group}: exactly one new timeline (one switchover, no failover)`);
    }
    for (const name of databaseNames) t.is((await adapter.inspect(name)).HostConfig.Memory, memoryMb * 1024 * 1024, `${name}: ${memoryMb} MB`);
    const lost = await missingWrites(adminUrl, table, result.acknowledged, DEFAULT_BUCKET);
    const summary = `rolling replacement (databaseMemoryMb ${config.databaseMemoryMb} -> ${memoryMb}): ${replaced.length} containers in ${((Date.now() - started) / 1000).toFixed(1)} s, ` +
      `${result.acknowledged.length} writes through PgBouncer acknowledged, ${result.errors} failed, ${lost.length} lost` +
      (result.errors > 0 ? ` (${result.errorMessages.slice(0, 3).join(" | ")}; failed at ${result.failedAt.slice(0, 5).map((ms) => `+${((ms - started) / 1000).toFixed(1)} s`).join(", ")})` : "");
    log(summary);
    t.log(summary);

    // The sized parameters went into the DCS before the replacements: every node runs them, none
    // waits for a restart, and the PostgresConfig step of the same `up` changes nothing.
    const sharedBuffers = `${Math.floor(memoryMb / 4)}MB`;
    for (const name of databaseNames) {
      const shown = await adapter.exec(name, ["psql", "-XAtc", "SELECT current_setting('shared_buffers') || ' ' || (SELECT count(*) FROM pg_settings WHERE pending_restart)", "-d", "postgres"], "postgres");
      t.is(shown.output.trim(), `${sharedBuffers} 0`, `${name}: shared_buffers, settings pending a restart`);
    }
    const declaredConfig = redeclared.find((r) => r.type === POSTGRES_CONFIG)!.inputs as unknown as PostgresConfigInputs;
    const configInputs: PostgresConfigInputs = {
      ...declaredConfig,
      groups: await Promise.all(declaredConfig.groups.map(async (g) => ({ ...g, members: await Promise.all(g.members.map(async (m) => ({ ...m, restUrl: await restUrl(m.name), serverName: m.name }))) }))),
    };
    const outcome = ((await postgresConfigProvider.update!("id", configInputs, configInputs)).outs as { outcome: { changed: string[]; restarted: string[]; switchovers: string[] }[] }).outcome;
    t.deepEqual(outcome.map((g) => [g.changed, g.restarted, g.switchovers]), topology.groups.map(() => [[], [], []]), "PostgresConfig after the roll: nothing to patch or restart");

    // The same stack declared once more: nothing is replaced, and the program asks no Patroni.
    const again: string[] = [];
    const rollsBefore = rolls.length;
    useReplacementEnvironment({ onCreate: (roll) => rolls.push(roll) });
    try {
      const same = await declareCluster(PROJECT, changedStack, passwords, (r) => {
        const old = deployed.get(String(r.inputs.name));
        if (r.type === "docker:index/container:Container" && old && !isDeepStrictEqual(old.inputs, r.inputs)) again.push(r.name);
      });
      await waitFor("the program's rolling replacement", 30_000, async () => (rolls.length > rollsBefore ? true : undefined));
      const reports = await rolls[rollsBefore].done();
      t.deepEqual(again, [], "containers registered with other inputs");
      t.deepEqual(reports.map((r) => r.outdated.length + r.restarted.length + r.switchovers.length).reduce((a, b) => a + b, 0), 0);
      t.is(same.registrations.filter((r) => r.type === "docker:index/container:Container").length, deployed.size);
    } finally {
      useReplacementEnvironment(undefined);
    }
    t.log(`after the roll: shared_buffers ${sharedBuffers} on every node, none pending a restart; PostgresConfig: nothing to do; declared again unchanged: 0 containers replaced`);
    // Last: an assertion that fails ends the test.
    t.is(result.errors, 0, "failed writes");
    t.deepEqual(lost, [], "acknowledged writes lost");
  });

  /** `etcdctl member list` inside an etcd container, with its own certificate: one line per member (id, status, name, peer and client URLs). */
  const etcdMembers = async (container: string) => {
    const cmd = etcdHealthcheck();
    const shown = await adapter.exec(container, [...cmd.slice(0, cmd.indexOf("endpoint")), "member", "list"]);
    if (shown.code !== 0) throw new Error(`etcdctl member list in ${container}: ${shown.output}`);
    return shown.output.trim().split("\n").sort();
  };

  test.serial("etcd rolled one member at a time with Patroni paused: the stack declared again with a new etcdImage tag, under writes through PgBouncer: each member replaced after the one before is healthy again, same members, no primary demoted, 0 lost", async (t) => {
    t.true(booted, "the cluster did not boot");
    const table = "docker_etcd_roll_writes";
    await ContinuousWriter.createTable(adminUrl, table, ROLES.app);
    const etcdNames = topology.etcd.map((m) => m.name);
    const membersBefore = await etcdMembers(etcdNames[0]);
    // Each group's leader and timeline: a primary that demoted itself during the roll changes one of them.
    const leadership = async () => {
      const lines: string[] = [];
      for (let group = 0; group < topology.groups.length; group++) {
        const leader = (await settledGroup(group, 120_000)).find((m) => m.role === "leader")!;
        lines.push(`group ${group}: ${leader.name} on timeline ${leader.timeline}`);
      }
      return lines;
    };
    const leadersBefore = await leadership();
    const changedStack = { ...currentStack, etcdImage: config.etcdImage.replace(/:[^:/]+$/, "") + ":rebuilt" };
    const started = Date.now();
    const at = () => `+${((Date.now() - started) / 1000).toFixed(1)} s`;
    const timeline: string[] = [];
    const replaced: string[] = [];
    const replacements: Promise<unknown>[] = [];
    const rolls: EtcdRollingReplacement[] = [];
    const healthyAtRegistration = new Map<string, Promise<string[]>>();
    useReplacementEnvironment({ onCreateEtcd: (roll) => rolls.push(roll) });
    const writer = new ContinuousWriter({ table, bucket: DEFAULT_BUCKET, connectionString: async () => appUrl });
    writer.start();
    let result: Awaited<ReturnType<ContinuousWriter["stop"]>>;
    let report: Awaited<ReturnType<EtcdRollingReplacement["done"]>>;
    try {
      await waitFor("writes before the change", 15_000, async () => (writer.acknowledgedCount >= 20 ? true : undefined));
      // The engine's side of `pulumi up`, as in the test before: a changed container is replaced at once.
      const onRegistration = (r: Registration) => {
        if (r.type !== "docker:index/container:Container") return;
        const old = deployedContainers.get(String(r.inputs.name));
        if (!old || isDeepStrictEqual(old.inputs, r.inputs)) return;
        replaced.push(r.name);
        timeline.push(`${at()} ${r.name} registered: replacing`);
        // Which etcd containers pass their health check as this one is registered (read at once).
        healthyAtRegistration.set(r.name, Promise.all(etcdNames.map((n) => adapter.inspect(n).then((i) => (i.State?.Health?.Status === "healthy" ? n : ""), () => ""))).then((l) => l.filter(Boolean)));
        replacements.push(
          adapter.replaceContainer(old, r).then(({ stopSeconds }) => {
            timeline.push(`${at()} ${r.name} running again (old container stopped in ${stopSeconds.toFixed(1)} s)`);
            deployedContainers.set(String(r.inputs.name), r);
          }),
        );
      };
      await declareCluster(PROJECT, changedStack, passwords, onRegistration);
      await waitFor("the program's etcd roll", 30_000, async () => (rolls.length > 0 ? true : undefined));
      report = await rolls[0].done();
      await Promise.all(replacements);
      currentStack = changedStack;
      for (let group = 0; group < topology.groups.length; group++) await settledGroup(group, 120_000);
      await sleep(2000); // keep writing for a moment
    } finally {
      result = await writer.stop();
      useReplacementEnvironment(undefined);
    }
    for (const line of timeline) t.log(line);
    const seconds = (Date.now() - started) / 1000;
    t.deepEqual(replaced, etcdNames, "the etcd containers replaced, in member order, nothing else");
    // One at a time: each registered only after the one before ran again and passed its health check.
    for (let i = 1; i < etcdNames.length; i++) {
      const registered = timeline.find((l) => l.includes(`${etcdNames[i]} registered`))!;
      // The one being replaced is stopped by then at the earliest; every other one is healthy.
      const healthy = await healthyAtRegistration.get(etcdNames[i])!;
      t.deepEqual(healthy.filter((n) => n !== etcdNames[i]), etcdNames.filter((n) => n !== etcdNames[i]), `the other members healthy when ${etcdNames[i]} was registered`);
      t.true(timeline.indexOf(timeline.find((l) => l.includes(`${etcdNames[i - 1]} running again`))!) < timeline.indexOf(registered), `${etcdNames[i - 1]} ran again before ${etcdNames[i]} was registered`);
    }
    for (const name of etcdNames) t.is(deployedContainers.get(name)!.inputs.image, changedStack.etcdImage, `${name} runs the declaration with the new image`);
    // The roll paused Patroni (maintenance mode) around the members' replacement, and resumed it.
    for (const name of topology.groups.flat().map((n) => n.name)) {
      const status = JSON.parse((await request(`${await restUrl(name)}/patroni`)).text) as { pause?: boolean };
      t.not(status.pause, true, `${name}: Patroni resumed after the etcd roll`);
    }
    // Same members (ids, names, peer URLs): each came back from its kept data directory.
    t.deepEqual(await etcdMembers(etcdNames[etcdNames.length - 1]), membersBefore, "etcd member list");
    const lost = await missingWrites(adminUrl, table, result.acknowledged, DEFAULT_BUCKET);
    const summary = `etcd roll (etcdImage -> ${changedStack.etcdImage}): ${replaced.length} containers in ${seconds.toFixed(1)} s (${report!.replaced.map((r) => `${r.member} ${r.seconds.toFixed(1)} s`).join(", ")}), ` +
      `${result.acknowledged.length} writes through PgBouncer acknowledged, ${result.errors} failed, ${lost.length} lost` +
      (result.errors > 0 ? ` (${result.errorMessages.slice(0, 3).join(" | ")})` : "");
    log(summary);
    t.log(summary);
    // Leader-lock updates that failed while a member stopped: ridden out because Patroni was paused.
    const lockFailures: string[] = [];
    for (const name of topology.groups.flat().map((n) => n.name)) {
      for (const line of await logLinesSince(name, started, /failed to update leader lock|failing to update leader lock/, 10).catch(() => [])) lockFailures.push(`${name} ${line}`);
    }
    const lockSummary = `etcd roll: ${lockFailures.length} failed leader-lock update(s) on the database members during the roll${lockFailures.length ? `:\n${lockFailures.join("\n")}` : ""}`;
    log(lockSummary);
    t.log(lockSummary);
    if (result.errors > 0) {
      // Why a write failed: what each database member's Patroni said about etcd and its lock during the roll.
      const failed = result.failedAt.slice(0, 5).map((ms) => `+${((ms - started) / 1000).toFixed(2)} s`).join(", ");
      log(`etcd roll: writes failed at ${failed}; the database members' Patroni lines about etcd, the leader lock and demotions:`);
      for (const name of topology.groups.flat().map((n) => n.name)) {
        const lines = await logLinesSince(name, started, /lock|[Dd]emot|[Pp]romot|etcd|[Ll]ease|DCS|ERROR|WARNING|FATAL|read-only|recovery/, 400).catch((e: Error) => [`(no log: ${e.message})`]);
        // Not the REST API's tracebacks of health checks HAProxy gave up on.
        const useful = lines.filter((l) => !/no action\. I am|Exception happened during processing|Traceback/.test(l)).slice(0, 40);
        log(`----- ${name}:\n${useful.join("\n")}`);
      }
    }
    // Patroni was paused: no primary demoted itself, none failed over.
    t.deepEqual(await leadership(), leadersBefore, "each group's leader and timeline after the etcd roll");
    // What remains (README, "etcd, one member at a time"): when a stopping member fails a leader's lock
    // update, that leader's /primary answers 503 until its next HA loop; HAProxy marks it down and ends
    // its sessions: the statement in flight then fails ("server conn crashed?"), at most once per member.
    t.true(result.errors <= etcdNames.length, `failed writes: ${result.errors}`);
    for (const message of result.errorMessages) t.regex(message, /server conn crashed|server closed the connection|Connection terminated/, "a failed write was a session ended by HAProxy, not a read-only primary");
    t.deepEqual(lost, [], "acknowledged writes lost");
  });

  test.serial("pulumi destroy keeps every data volume (retainDataOnDestroy); the stack declared again finds its data and its Citus metadata", async (t) => {
    t.true(booted, "the cluster did not boot");
    t.true(config.retainDataOnDestroy, "the test stack keeps the default");
    await query(adminUrl, "CREATE TABLE destroy_check (namespace text NOT NULL, id int NOT NULL, PRIMARY KEY (namespace, id))");
    await query(adminUrl, "SELECT create_distributed_table('destroy_check', 'namespace')");
    await query(adminUrl, "INSERT INTO destroy_check SELECT 'ns-' || (i % 40), i FROM generate_series(1, 4000) i");
    const fingerprint = "SELECT count(*)::int AS rows, sum(hashtext(namespace || id))::bigint AS sum FROM destroy_check";
    const before = (await query(adminUrl, fingerprint)).rows[0];
    const groupsBefore = [...(await placementsPerGroup(adminUrl, "destroy_check")).keys()].sort();

    const started = Date.now();
    const { kept, removed, stops } = await adapter.destroy(registrations);
    const destroyed = (Date.now() - started) / 1000;
    const dataVolumes = topology.groups.flat().map((n) => `${n.name}-data`);
    t.deepEqual(removed, [], "volumes deleted by destroy");
    for (const volume of dataVolumes) t.true(kept.includes(volume) && (await adapter.volumeNames()).includes(volume), `${volume} kept`);
    t.deepEqual(await adapter.leftovers().then((l) => l.filter((x) => x.startsWith("container"))), [], "containers left after destroy");

    const again = Date.now();
    const containers = await adapter.apply(registrations, true);
    // The containers run the first declaration again.
    for (const r of registrations.filter((x) => x.type === "docker:index/container:Container")) deployedContainers.set(String(r.inputs.name), r);
    currentStack = DOCKER_TEST_STACK;
    await adapter.waitHealthy(300, containers);
    for (let group = 0; group < topology.groups.length; group++) await settledGroup(group, 180_000);
    const after = await waitFor("the re-created cluster answers through HAProxy", 120_000, async () =>
      query(adminUrl, fingerprint).then((r) => r.rows[0], () => undefined),
    );
    const recreated = (Date.now() - again) / 1000;
    t.deepEqual(after, before, "rows and checksum after destroy + up");
    t.deepEqual([...(await placementsPerGroup(adminUrl, "destroy_check")).keys()].sort(), groupsBefore, "shards on the same worker groups");
    // Patroni re-registers a group's primary if the election chose another member this time.
    await waitFor("pg_dist_node names every group's current primary", 60_000, async () => {
      const dist = await distPrimaries(adminUrl);
      for (let group = 0; group < topology.groups.length; group++) {
        if (dist.get(group) !== (await groupMembers(group))?.find((m) => m.role === "leader")?.name) return undefined;
      }
      return true;
    });
    // Citus takes DDL again once it has synced its metadata to every worker group's primary (Patroni's
    // citus_update_node marks every metadata worker out of sync when a group's primary changed).
    await waitForMetadataSync(adminUrl, { timeoutMs: 120_000, log });
    const metadataSynced = (Date.now() - again) / 1000;
    // The stack's Schema resource is created anew after a destroy: with the inputs last applied (the
    // hnswEfSearch test changed them) it applies nothing on the kept data.
    t.truthy(schemaState, "the Schema resource did not apply");
    const schema = (await schemaProvider.create(schemaState!)).outs as ApplyResult;
    t.deepEqual(schema.applied, [], "migrations re-applied on kept data");
    const slowest = [...stops].sort((a, b) => b.seconds - a.seconds).slice(0, 4).map((s) => `${s.name} ${s.seconds.toFixed(1)} s`);
    const summary = `destroy (containers stopped with their grace period in Pulumi's delete order, ${kept.length} volumes kept, 0 deleted) ${destroyed.toFixed(1)} s ` +
      `(slowest stops: ${slowest.join(", ")}); ` +
      `declared again: healthy with ${after.rows} rows (checksum equal) on ${groupsBefore.length} worker groups after ${recreated.toFixed(1)} s, ` +
      `Citus metadata synced to every worker after ${metadataSynced.toFixed(1)} s`;
    log(summary);
    t.log(summary);
    // What the slowest containers did while they stopped (their shutdown, from their own log).
    for (const stop of [...stops].sort((a, b) => b.seconds - a.seconds).slice(0, 2)) {
      if (stop.lastLines) log(`----- ${stop.name}: stopped in ${stop.seconds.toFixed(1)} s; its last lines:\n${stop.lastLines.trimEnd()}`);
    }
  });
  /**
   * One password rotation as `pulumi up` runs it, under a client writing through PgBouncer from before
   * it to after the roll (one session, reconnecting with the password of the moment only after an
   * error): the PasswordRotation provider's update (the roles, then one login through PgBouncer with
   * a new application password), the checks of the application password through PgBouncer, then the
   * stack declared again with `news` and every container it registers with other inputs replaced, in
   * the program's rolling order. Returns what was replaced, the writer's outcome and whether PgBouncer
   * and HAProxy kept their containers.
   */
  async function rotateUnderWrites(t: ExecutionContext, current: Record<PasswordName, string>, news: Record<PasswordName, string>, table: string) {
    const routers = [`${topology.scope}-pgbouncer`, `${topology.scope}-haproxy`];
    const routerIds = await Promise.all(routers.map(async (name) => (await adapter.inspect(name)).Id));
    const appUrlWith = (password: string) => verifyFullUrl(`postgresql://${ROLES.app}:${encodeURIComponent(password)}@127.0.0.1:${config.pgbouncerPort}/${config.database}`, ca);
    const superuserUrl = (password: string) => verifyFullUrl(`postgresql://${ROLES.superuser}:${encodeURIComponent(password)}@127.0.0.1:${config.haproxyReadWritePort}/${config.database}`, ca);
    await ContinuousWriter.createTable(superuserUrl(current.superuser), table, ROLES.app);
    let appPassword = current.app;
    const writer = new ContinuousWriter({ table, bucket: DEFAULT_BUCKET, connectionString: async () => appUrlWith(appPassword) });
    writer.start();
    let writes: Awaited<ReturnType<ContinuousWriter["stop"]>> | undefined;
    const started = Date.now();
    const at = () => `+${((Date.now() - started) / 1000).toFixed(1)} s`;
    const timeline: string[] = [];
    const replaced: string[] = [];
    const replacements: Promise<unknown>[] = [];
    const rolls: RollingReplacement[] = [];
    let rotationSeconds = 0;
    let rotated: string[] = [];
    let reports: Awaited<ReturnType<RollingReplacement["done"]>> = [];
    useReplacementEnvironment({ onCreate: (roll) => rolls.push(roll) });
    try {
      await waitFor("writes before the rotation", 15_000, async () => (writer.acknowledgedCount >= 20 ? true : undefined));
      const rotation = deferred(ROTATION)[0].inputs as unknown as PasswordRotationInputs;
      const rotatedAt = Date.now();
      rotated = ((await passwordRotationProvider.update!("id", { ...rotation, passwords: current }, { ...rotation, passwords: news })).outs as { rotated: string[] }).rotated;
      rotationSeconds = (Date.now() - rotatedAt) / 1000;
      appPassword = news.app;
      if (news.app !== current.app) {
        // Through PgBouncer at once: the new application password in, the old one out.
        t.is((await query(appUrlWith(news.app), "SELECT 1 AS one")).rows[0].one, 1, "the new application password through PgBouncer");
        const oldRefused = await query(appUrlWith(current.app), "SELECT 1").then(() => "accepted", (e: Error) => e.message);
        t.regex(oldRefused, /authentication failed/, "the old application password through PgBouncer");
      }
      await declareCluster(
        PROJECT,
        currentStack,
        news,
        (r) => {
          if (r.type !== "docker:index/container:Container") return;
          const old = deployedContainers.get(String(r.inputs.name));
          if (!old || isDeepStrictEqual(old.inputs, r.inputs)) return;
          replaced.push(r.name);
          timeline.push(`${at()} ${r.name} registered: replacing`);
          replacements.push(
            adapter.replaceContainer(old, r).then(() => {
              timeline.push(`${at()} ${r.name} running again`);
              deployedContainers.set(String(r.inputs.name), r);
            }),
          );
        },
        // What the rotation's provider returned in step 1: the passwords before it.
        (type) => (type === ROTATION ? { previous: current } : undefined),
      );
      await waitFor("the program's rolling replacement", 30_000, async () => (rolls.length > 0 ? true : undefined));
      reports = await rolls[0].done();
      await Promise.all(replacements);
      for (let group = 0; group < topology.groups.length; group++) await settledGroup(group, 180_000);
      for (const report of reports) timeline.push(`group ${report.group}: replaced ${report.restarted.join(", ")}; switchovers ${report.switchovers.map((s) => `${s.from} -> ${s.to} ${s.seconds.toFixed(1)} s${s.paused ? " (PgBouncer paused)" : ""}`).join(", ")}`);
      await sleep(2000); // keep writing for a moment
    } finally {
      useReplacementEnvironment(undefined);
      writes = await writer.stop();
    }
    for (const line of timeline) t.log(line);
    const routerIdsAfter = await Promise.all(routers.map(async (name) => (await adapter.inspect(name)).Id));
    const routersRunning = await Promise.all(routers.map(async (name) => (await adapter.inspect(name)).State.Running));
    const lost = await missingWrites(superuserUrl(news.superuser), table, writes.acknowledged, DEFAULT_BUCKET);
    const summary = `rotation of ${rotated.join(", ")}: step 1 (roles + PgBouncer login) ${rotationSeconds.toFixed(2)} s; ` +
      `${replaced.length} containers re-created one at a time in ${((Date.now() - started) / 1000).toFixed(1)} s (${replaced.join(", ")}); ` +
      `${routers.join(", ")}: ${routers.map((_, i) => (routerIdsAfter[i] === routerIds[i] && routersRunning[i] ? "same container, running" : "REPLACED")).join(", ")}; ` +
      `writer through PgBouncer: ${writes.acknowledged.length} writes acknowledged, ${writes.errors} failed, ${lost.length} lost` +
      (writes.errors > 0 ? ` (${writes.errorMessages.slice(0, 3).map((m) => m.split("\n")[0]).join(" | ")}; failed at ${writes.failedAt.slice(0, 12).map((ms) => `+${((ms - started) / 1000).toFixed(1)} s`).join(", ")})` : "") +
      // When each switchover ran (to tell which one a failed write fell into).
      `; switchovers ${reports.flatMap((r) => r.switchovers).map((s) => `${s.from} -> ${s.to} +${((s.startedAt - started) / 1000).toFixed(1)}..+${((s.startedAt - started) / 1000 + s.seconds).toFixed(1)} s${s.paused ? " paused" : ""}`).join(", ")}`;
    log(summary);
    t.log(summary);
    return { rotated, replaced, reports, writes, lost, routers, routerIds, routerIdsAfter, routersRunning };
  }

  /** PgBouncer and HAProxy: registered with the same inputs, so the engine kept them: the same containers, running. */
  function assertRoutersKept(t: ExecutionContext, outcome: Awaited<ReturnType<typeof rotateUnderWrites>>): void {
    for (const [index, name] of outcome.routers.entries()) {
      t.false(outcome.replaced.includes(name), `${name} registered with other inputs`);
      t.is(outcome.routerIdsAfter[index], outcome.routerIds[index], `${name}: the same container`);
      t.true(outcome.routersRunning[index], `${name} running`);
    }
  }

  // The application password every check above connects with changes here (the writer and the
  // checks below take it from `passwords`).
  test.serial("an application-password rotation under writes through PgBouncer: PgBouncer and HAProxy keep their containers, no failed write", async (t) => {
    t.true(booted, "the cluster did not boot");
    for (let group = 0; group < topology.groups.length; group++) await settledGroup(group, 120_000);
    const news = { ...passwords, app: `${passwords.app}-a` };
    const outcome = await rotateUnderWrites(t, passwords, news, "docker_app_rotation_writes");
    passwords.app = news.app;
    t.deepEqual(outcome.rotated, ["app"]);
    assertRoutersKept(t, outcome);
    // Only the database containers carry the application password (Patroni's post-bootstrap file).
    const databaseNames = topology.groups.flat().map((n) => n.name);
    t.deepEqual(outcome.replaced.filter((n) => !databaseNames.includes(n)), [], "containers other than the database's re-created");
    t.deepEqual(outcome.reports.map((r) => r.switchovers.length), topology.groups.map(() => 1), "one switchover per group");
    t.is(outcome.writes.errors, 0, "failed writes");
    t.deepEqual(outcome.lost, [], "acknowledged writes lost");
  });

  // Last: the superuser password every check above connects with changes here.
  test.serial("a rotation of the superuser and REST API passwords: the database containers re-created one at a time, members not yet re-created reached with the previous passwords; PgBouncer and HAProxy keep their containers", async (t) => {
    t.true(booted, "the cluster did not boot");
    const before = new Map<number, ClusterMember[]>();
    for (let group = 0; group < topology.groups.length; group++) before.set(group, await settledGroup(group, 120_000));
    const news = { ...passwords, superuser: `${passwords.superuser}-r`, restApi: `${passwords.restApi}-r` };
    const outcome = await rotateUnderWrites(t, passwords, news, "docker_superuser_rotation_writes");
    t.deepEqual([...outcome.rotated].sort(), ["restApi", "superuser"]);
    t.deepEqual(outcome.reports.map((r) => r.switchovers.length), topology.groups.map(() => 1), "one switchover per group");
    assertRoutersKept(t, outcome);
    const databaseNames = topology.groups.flat().map((n) => n.name);
    const databaseReplaced = outcome.replaced.filter((n) => databaseNames.includes(n));
    t.deepEqual([...databaseReplaced].sort(), [...databaseNames].sort(), "every database container re-created");
    for (let group = 0; group < topology.groups.length; group++) {
      const oldLeader = before.get(group)!.find((m) => m.role === "leader")!.name;
      t.is(databaseReplaced.filter((n) => names(group).includes(n)).at(-1), oldLeader, `group ${group}: its former leader re-created last`);
    }
    // Every member now checks the new REST API password only.
    for (const name of databaseNames) {
      const reload = async (password: string) =>
        (await request(`${await restUrl(name)}/reload`, { method: "POST", headers: { authorization: `Basic ${Buffer.from(`${ROLES.restApi}:${password}`).toString("base64")}` } })).status;
      t.deepEqual([await reload(news.restApi), await reload(passwords.restApi)], [202, 401], name);
    }
    // Members not yet re-created announce a worker's switchover to a coordinator leader that checks the
    // new REST API password and are refused (Patroni ha.py notify_mpp_coordinator ignores the 401):
    // the roll pauses PgBouncer around those switchovers until pg_dist_node names the new leader.
    t.deepEqual(outcome.reports.map((r) => r.switchovers.map((s) => s.paused)), topology.groups.map(() => [true]), "PgBouncer paused around every switchover");
    t.is(outcome.writes.errors, 0, "failed writes");
    t.deepEqual(outcome.lost, [], "acknowledged writes lost");
    t.log("POST /reload: new REST API password 202, old 401 on every member");
  });

}

// `npm run test:docker`: the containers the Docker platform declares, run for real. The Cluster
// component registers its resources under Pulumi's mocks (no Pulumi engine here); the adapter
// creates them in our own dockerd (scripts/docker-install.sh) with locally built images; then the
// cluster is checked end to end: leaders, the client path, migrations, a quick benchmark, and a crash
// of the coordinator primary's container under continuous writes.
import test from "ava";
import pg from "pg";
import { planTopology } from "../../components/spec.ts";
import { ROLES, PORTS } from "../../components/render/index.ts";
import { applyMigrations, CITUS_ABSENT_NOTE } from "../../sql/apply.ts";
import { runPostDeployBenchmark } from "../../benchmarks/post-deploy.ts";
import { clusterMembers, leaderOf } from "../../local/patroni-api.ts";
import { ContinuousWriter, missingWrites } from "../../local/writer.ts";
import { DockerAdapter } from "./adapter.ts";
import { declareCluster } from "./declared.ts";
import { startEngine, stopEngine } from "./engine.ts";
import { NO_STAND_IN, STAND_INS } from "./images.ts";
import { DOCKER_TEST_STACK, PROJECT, testPasswords } from "./stack.ts";

const log = (line: string) => console.log(`[docker] ${line}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const CITUS_NOTE =
  "Citus absent: no reachable registry ships citusdata/citus and Debian has no citus package, so the database image " +
  "is built on plain Debian 13 and each group runs as its own Patroni scope without the citus section (as the local " +
  "cluster does); the Citus rendering is covered by the unit tests, not run here";

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
    await sleep(250);
  }
}

async function query(url: string, sql: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000, query_timeout: 10000 });
  await client.connect();
  try {
    return await client.query(sql);
  } finally {
    await client.end().catch(() => undefined);
  }
}

const engine = startEngine(log);
if ("unavailable" in engine) {
  console.log(`SKIPPED test/docker: the Docker engine cannot run on this machine: ${engine.unavailable}`);
  test.skip("the Docker platform's containers boot and pass the end-to-end checks", () => {});
} else {
  const passwords = testPasswords();
  const { config, registrations } = await declareCluster(PROJECT, DOCKER_TEST_STACK, passwords);
  const topology = planTopology(config);
  const adapter = new DockerAdapter(engine.socketPath, log);
  const url = (role: "app" | "superuser", port: number) =>
    `postgresql://${ROLES[role]}:${encodeURIComponent(passwords[role])}@127.0.0.1:${port}/${config.database}`;
  // The client path (published PgBouncer port) and, for work that needs a session, HAProxy's.
  const appUrl = url("app", config.pgbouncerPort);
  const adminUrl = url("superuser", config.haproxyReadWritePort);
  const restUrls = (group: number) => Promise.all(topology.groups[group].map(async (n) => `http://${await adapter.ipOf(n.name)}:${PORTS.patroniRest}`));

  /** The group's members once it has a running leader and every other member streams from it. */
  const settledGroup = (group: number, timeoutMs: number) =>
    waitFor(`group ${group}: a leader and streaming replicas`, timeoutMs, async () => {
      const members = await clusterMembers(await restUrls(group));
      const leaders = members?.filter((m) => m.role === "leader") ?? [];
      const streaming = members?.filter((m) => m.role !== "leader" && m.state === "streaming") ?? [];
      // With synchronous replication only a synchronous standby may be promoted: wait until one is named.
      const synchronous = config.synchronousMode === "off" || members?.some((m) => /^(sync|quorum)_standby$/.test(m.role));
      const ok = members?.length === topology.groups[group].length && leaders.length === 1 && leaders[0].state === "running" &&
        streaming.length === members.length - 1 && synchronous;
      return ok ? members : undefined;
    });

  let booted = false;
  test.before(() => {
    log(CITUS_NOTE);
    log(`stand-ins: ${Object.entries(STAND_INS).map(([upstream, s]) => `${upstream} -> ${"base" in s ? s.base : `dpc-test/${s.target}:stand-in`}`).join("; ")}`);
    for (const note of Object.values(NO_STAND_IN)) log(note);
  });

  test.after.always(async () => {
    const problems = await adapter.teardown();
    const left = await adapter.leftovers().catch((e: Error) => [`could not list: ${e.message}`]);
    const stopped = process.env.DPC_DOCKER_KEEP_DAEMON ? true : stopEngine(log);
    log(`tear-down: ${problems.length + left.length === 0 ? "every container, network, volume and image tag removed" : [...problems, ...left].join("; ")}`);
    if (problems.length + left.length > 0 || !stopped) throw new Error(`tear-down left: ${[...problems, ...left].join("; ") || "dockerd running"}`);
  });

  test.serial("the declared containers boot and become healthy", async (t) => {
    const started = Date.now();
    const containers = await adapter.apply(registrations);
    const created = Date.now();
    for (const note of adapter.notRun) t.log(`not run: ${note}`);
    t.true(containers.length >= 10, containers.join(", "));
    const builds = Object.entries(adapter.timings.builds).map(([tag, s]) => `${tag} ${s.toFixed(1)} s`).join(", ");
    const healthy = await adapter.waitHealthy(240, containers);
    booted = true;
    const buildSeconds = Object.values(adapter.timings.builds).reduce((a, b) => a + b, 0);
    const summary = `image builds ${buildSeconds.toFixed(1)} s (${builds}); ${containers.length} containers created in ${((created - started) / 1000 - buildSeconds).toFixed(1)} s; boot-to-healthy ${healthy.toFixed(1)} s`;
    log(summary);
    t.log(summary);
  });

  test.serial("one leader per group, every other member streaming", async (t) => {
    t.true(booted, "the cluster did not boot");
    for (let group = 0; group < topology.groups.length; group++) {
      const members = await settledGroup(group, 90_000);
      t.log(`group ${group}: ${members.map((m) => `${m.name} ${m.role}/${m.state}`).join(", ")}`);
    }
  });

  test.serial("PgBouncer -> HAProxy -> the coordinator primary answers on the published port", async (t) => {
    t.true(booted, "the cluster did not boot");
    const leader = leaderOf(await clusterMembers(await restUrls(0)));
    t.truthy(leader);
    const row = (await query(appUrl, "SELECT host(inet_server_addr()) AS addr, pg_is_in_recovery() AS recovery, current_user AS who")).rows[0];
    t.false(row.recovery);
    t.is(row.who, ROLES.app);
    t.is(row.addr, await adapter.ipOf(leader!.name), "answered by the leader's container");
  });

  // The dynamic resources `pulumi up` runs once the containers exist; each kind has its check here.
  const SCHEMA = "pulumi-nodejs:dynamic/dpc:SchemaMigrations";
  const BENCHMARK = "pulumi-nodejs:dynamic/dpc:BenchmarkRun";
  const deferred = (type: string) => adapter.deferred.filter((r) => r.type === type);

  test.serial("every dynamic resource the program declares has its check here", (t) => {
    t.true(booted, "the cluster did not boot");
    const unhandled = adapter.deferred.filter((r) => ![SCHEMA, BENCHMARK].includes(r.type));
    t.deepEqual(unhandled.map((r) => `${r.type} ${r.name}`), []);
  });

  test.serial("the schema migrations apply at the Schema resource's endpoint (twice: the second run applies nothing)", async (t) => {
    t.true(booted, "the cluster did not boot");
    // The Schema resource's own connection string (HAProxy's published read-write port), from the host.
    const target = deferred(SCHEMA).map((r) => String(r.inputs.connectionString))[0] ?? adminUrl;
    t.log(`migrations through ${target.replace(/:[^:@/]*@/, ":***@")}`);
    const first = await applyMigrations(target, config);
    t.true(first.notes.includes(CITUS_ABSENT_NOTE));
    const second = await applyMigrations(target, config);
    t.deepEqual(second.applied, []);
    t.log(`migrations ${first.version}: applied ${first.applied.join(", ") || "none"}; ${first.notes.join("; ")}`);
  });

  test.serial("the benchmark runs in quick mode at the BenchmarkRun resource's endpoint (PgBouncer)", async (t) => {
    t.true(booted, "the cluster did not boot");
    const run = deferred(BENCHMARK)[0]?.inputs;
    const target = run ? String(run.url) : appUrl;
    // Smaller than quick's 5,000 rows on purpose: this proves the path; the local cluster gives the figures.
    const summary = await runPostDeployBenchmark(target, "quick", { rows: 2000, skipPgbench: true });
    t.true(summary.scenarios.length > 0);
    t.log(`benchmark (quick, 2000 rows) verdict ${summary.verdict}: ` + summary.scenarios.map((s) => `${s.id} p95 ${s.p95Ms} ms`).join("; "));
  });

  /**
   * Kills the coordinator primary's container under continuous writes through PgBouncer and
   * measures the outage. How it dies decides who brings it back (checked in the Docker docs and
   * here): `docker kill` counts as stopped by the user, so no restart policy applies; the container's
   * main process dying on its own (SIGKILL of its PID 1 from the host) is a crash the policy restarts.
   */
  async function killUnderWrites(how: "crash" | "docker kill", note: (line: string) => void) {
    const table = how === "crash" ? "docker_crash_writes" : "docker_kill_writes";
    await ContinuousWriter.createTable(adminUrl, table);
    await query(adminUrl, `GRANT ALL ON ${table} TO ${ROLES.app}`);
    const before = await settledGroup(0, 90_000);
    const oldLeader = before.find((m) => m.role === "leader")!;
    const container = await adapter.inspect(oldLeader.name);

    const writer = new ContinuousWriter({ table, connectionString: async () => appUrl });
    writer.start();
    let result: Awaited<ReturnType<ContinuousWriter["stop"]>>;
    let killedAt = 0;
    try {
      await waitFor("writes before the kill", 15_000, async () => (writer.acknowledgedCount >= 50 ? true : undefined));
      killedAt = Date.now();
      if (how === "crash") process.kill(container.State.Pid, "SIGKILL");
      else await adapter.docker.getContainer(oldLeader.name).kill({ signal: "SIGKILL" });
      await waitFor("writes through PgBouncer after the kill", 120_000, async () => writer.recoveredAfter(killedAt));
      await sleep(2000); // keep writing for a moment
    } finally {
      result = await writer.stop();
    }
    const leaderAfter = leaderOf(await clusterMembers(await restUrls(0)));
    if (how === "docker kill") {
      // A stopped container stays stopped; `pulumi up` (the provider's must_run) starts it again.
      note(`restart policy after docker kill: container ${(await adapter.inspect(oldLeader.name)).State.Status}; starting it as pulumi up would`);
      await adapter.docker.getContainer(oldLeader.name).start();
    }
    const restarted = await waitFor("the container running again", 60_000, async () => {
      const info = await adapter.inspect(oldLeader.name);
      return info.State.Running ? info : undefined;
    });
    const members = await settledGroup(0, 120_000);
    const back = members.find((m) => m.name === oldLeader.name)!;
    return {
      oldLeader: oldLeader.name,
      leaderAfter: leaderAfter?.name,
      back,
      restartCount: restarted.RestartCount - container.RestartCount,
      secondsToFirstWrite: (writer.recoveredAfter(killedAt)! - killedAt) / 1000,
      secondsToSettled: (Date.now() - killedAt) / 1000,
      acknowledged: result.acknowledged.length,
      errors: result.errors,
      lost: await missingWrites(adminUrl, table, result.acknowledged),
    };
  }

  test.serial("a crash of the coordinator primary's container under writes: restart policy, no acknowledged write lost", async (t) => {
    t.true(booted, "the cluster did not boot");
    const r = await killUnderWrites("crash", (line) => t.log(line));
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
    const r = await killUnderWrites("docker kill", (line) => t.log(line));
    const summary =
      `failover in Docker (docker kill of ${r.oldLeader}): new leader ${r.leaderAfter}; first write through PgBouncer ` +
      `${r.secondsToFirstWrite.toFixed(1)} s after the kill; ${r.acknowledged} writes acknowledged, ${r.errors} errors, ${r.lost.length} lost; ` +
      `restarted by docker start: ${r.oldLeader} ${r.back.role}/${r.back.state}, group settled ${r.secondsToSettled.toFixed(1)} s after the kill`;
    log(summary);
    t.log(summary);
    t.not(r.leaderAfter, r.oldLeader, "no failover");
    t.not(r.back.role, "leader");
    t.deepEqual(r.lost, [], "acknowledged writes lost");
  });
}

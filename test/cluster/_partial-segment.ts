// The promotion that PANICked on a partly streamed segment (README "A promotion that PANICked on a
// partly streamed segment"), built deterministically with plain PostgreSQL instances: no Patroni, Unix
// sockets only, so it meets nothing else on the machine or in the container it runs in. Written once
// for the local PostgreSQL (test/cluster/partial-segment.test.ts) and a database container's
// (test/docker/docker.test.ts): everything goes through commands run as postgres.
//
// A primary; B and two copies of C standbys. C stops streaming after 4,000 rows, A writes 1,000 more,
// A dies, B promotes (timeline 2). Each C gets B's 00000002.history and B's timeline-2 file of the
// segment with everything after half of what C replayed zeroed, as a walreceiver's new file is when
// the primary it streams from dies milliseconds after C switched timeline.
import type { ClusterConfig, PostgresNode, Topology } from "../../components/spec.ts";
import { renderTimelineGuard, type Addressing, type PostgresLayout } from "../../components/render/index.ts";

/** Where the scenario runs: a command as the postgres user, and that host's PostgreSQL binaries. */
export interface ScenarioHost {
  run(command: string[]): Promise<{ code: number; output: string }>;
  /** PostgreSQL's bin directory there. */
  binDir: string;
  /** A directory the postgres user may create (and remove) for the instances. */
  root: string;
}

/** What happened: the figures the tests assert and print. */
export interface PartialSegmentResult {
  /** Where C's replay ended on timeline 1, and where B's timeline 2 forked. */
  replayedLsn: string;
  fork: string;
  /** The segment's file name on timeline 2 (the one left short). */
  newer: string;
  /** Bytes of the segment C replayed, and bytes the short file held. */
  replayedOffset: number;
  written: number;
  /** The unguarded C: its PostgreSQL after `pg_ctl promote`, and its log's PANIC line if any. */
  unguardedRunning: boolean;
  panic?: string;
  /** The guarded C: pre_promote's exit and log, the promotion, and what it holds after. */
  guardExit: number;
  guardLog: string;
  partialKept: boolean;
  promoted: boolean;
  promoteOutput: string;
  timeline?: number;
  rows?: number;
  maxId?: number;
  writableAfter: boolean;
  seconds: number;
}

// Every instance listens on this port in its own socket directory (the guard dials PORTS.postgres).
const PORT = "5432";

const lsnBytes = (lsn: string) => {
  const [high, low] = lsn.split("/");
  return BigInt(`0x${high}`) * 2n ** 32n + BigInt(`0x${low}`);
};

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs the scenario on `host` and returns what happened; throws when a setup step fails (with the
 * step's output). The guard is rendered for `node` of `topology` with its peers at B's socket (B is
 * dead by then, as in the failure) and paths inside the guarded instance.
 */
export async function runPartialSegmentScenario(host: ScenarioHost, config: ClusterConfig, topology: Topology, node: PostgresNode, addressing: Addressing, layout: PostgresLayout): Promise<PartialSegmentResult> {
  const started = Date.now();
  const bin = (name: string) => `${host.binDir}/${name}`;
  const must = async (what: string, command: string[]) => {
    const r = await host.run(command);
    if (r.code !== 0) throw new Error(`${what}: exit ${r.code}: ${r.output.trim().slice(-1500)}`);
    return r.output;
  };
  const dir = (name: string) => `${host.root}/${name}`;
  const data = (name: string) => `${dir(name)}/data`;
  const psql = (name: string, sql: string) => host.run([bin("psql"), "-X", "-A", "-t", "-q", "-h", dir(name), "-p", PORT, "-U", "postgres", "-d", "postgres", "-c", sql]);
  const value = async (name: string, sql: string) => {
    const r = await psql(name, sql);
    if (r.code !== 0) throw new Error(`${name}: ${sql}: exit ${r.code}: ${r.output.trim().slice(-1500)}`);
    return r.output.trim();
  };
  const until = async (what: string, check: () => Promise<boolean>, timeoutMs = 30_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`not within ${timeoutMs / 1000} s: ${what}`);
      await sleep(100);
    }
  };
  const log = async (name: string) => (await host.run(["cat", `${dir(name)}/postgres.log`])).output;
  const start = (name: string) =>
    must(`${name}: start`, [
      bin("pg_ctl"), "start", "-D", data(name), "-l", `${dir(name)}/postgres.log`, "-w", "-t", "60", "-o",
      `-c port=${PORT} -c listen_addresses= -c unix_socket_directories=${dir(name)} -c wal_level=replica -c max_wal_senders=8 ` +
        "-c hot_standby=on -c wal_retrieve_retry_interval=200ms -c shared_buffers=16MB -c max_connections=20 -c logging_collector=off -c shared_preload_libraries=",
    ]);
  const running = async (name: string) => (await host.run([bin("pg_ctl"), "status", "-D", data(name)])).code === 0;
  const writeFile = (what: string, path: string, content: Buffer | string, mode = "600") =>
    must(what, ["sh", "-c", `printf '%s' "$1" | base64 -d > "$2" && chmod ${mode} "$2"`, "sh", Buffer.from(content).toString("base64"), path]);

  const standbys = ["c-unguarded", "c-guarded"];
  await host.run(["rm", "-rf", host.root]);
  await must("root directory", ["mkdir", "-m", "700", "-p", host.root]);
  for (const name of ["a", "b", ...standbys]) await must(`${name}: directory`, ["mkdir", "-m", "700", dir(name)]);
  await must("a: initdb", [bin("initdb"), "-D", data("a"), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--data-checksums"]);
  await start("a");
  for (const name of ["b", ...standbys]) {
    await must(`${name}: pg_basebackup`, [bin("pg_basebackup"), "-h", dir("a"), "-p", PORT, "-U", "postgres", "-D", data(name), "-X", "stream", "-c", "fast", "-R"]);
    await start(name);
  }
  await until("B and both C stream from A", async () => (await value("a", "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")) === "3");

  // Rows every C replays, in a fresh segment (room for what follows in the same segment).
  await value("a", "SELECT pg_switch_wal()");
  await value("a", "CREATE TABLE rows (id int PRIMARY KEY, pad text)");
  await value("a", "INSERT INTO rows SELECT g, repeat('x', 200) FROM generate_series(1, 4000) g");
  const target = await value("a", "SELECT pg_current_wal_flush_lsn()");
  for (const c of standbys) {
    await until(`${c} replayed the rows`, async () => (await value(c, `SELECT pg_last_wal_replay_lsn() >= '${target}'::pg_lsn`)) === "t");
    // C stops streaming: it replays no more of A's WAL.
    await value(c, "ALTER SYSTEM SET primary_conninfo = ''");
    await value(c, "SELECT pg_reload_conf()");
  }
  for (const c of standbys) await until(`${c}'s walreceiver stopped`, async () => (await value(c, "SELECT count(*) FROM pg_stat_wal_receiver")) === "0");
  const replayedLsn = await value(standbys[0], "SELECT pg_last_wal_replay_lsn()");
  const other = await value(standbys[1], "SELECT pg_last_wal_replay_lsn()");
  if (other !== replayedLsn) throw new Error(`the two copies of C replayed to different positions: ${replayedLsn}, ${other}`);
  // The segment's name on timeline 1, from A (a standby cannot name WAL files).
  const segment = (await value("a", `SELECT pg_walfile_name('${replayedLsn}'::pg_lsn)`)).slice(8);

  // A writes on (B receives it) and dies; B promotes: timeline 2 forks after C's position.
  await value("a", "INSERT INTO rows SELECT g, repeat('y', 200) FROM generate_series(4001, 5000) g");
  const aEnd = await value("a", "SELECT pg_current_wal_flush_lsn()");
  await until("B replayed A's last rows", async () => (await value("b", `SELECT pg_last_wal_replay_lsn() >= '${aEnd}'::pg_lsn`)) === "t");
  await must("a: stop", [bin("pg_ctl"), "stop", "-D", data("a"), "-m", "immediate", "-w"]);
  await must("b: promote", [bin("pg_ctl"), "promote", "-D", data("b"), "-w", "-t", "60"]);
  const historyPath = `${data("b")}/pg_wal/00000002.history`;
  const history = await must("b: 00000002.history", ["cat", historyPath]);
  const fork = history.trim().split("\n").at(-1)!.split("\t")[1];
  const newer = `00000002${segment}`;
  if (!(lsnBytes(fork) > lsnBytes(replayedLsn))) throw new Error(`timeline 2 forks at ${fork}, not after C's ${replayedLsn}`);
  if (segment !== (await value("b", `SELECT pg_walfile_name('${fork}'::pg_lsn)`)).slice(8)) throw new Error(`the fork ${fork} is not in C's segment ${segment}`);
  await must("b: stop", [bin("pg_ctl"), "stop", "-D", data("b"), "-m", "immediate", "-w"]);

  // What C's walreceiver had written of B's file when B died: half of what C replayed, zeros after.
  const segmentBytes = BigInt((await must("segment size", ["stat", "-c", "%s", `${data("b")}/pg_wal/${newer}`])).trim());
  const replayedOffset = Number(lsnBytes(replayedLsn) % segmentBytes);
  const written = Math.floor(replayedOffset / 2 / 8192) * 8192;
  for (const c of standbys) {
    // The short file is made beside pg_wal and renamed into it, and the history file comes last:
    // C's startup process, polling pg_wal, must never see B's whole file (it would replay it).
    await must(`${c}: B's file, short`, ["sh", "-c", `cp "$1" "$3" && dd if=/dev/zero of="$3" bs=8192 seek=${written / 8192} count=${Number(segmentBytes) / 8192 - written / 8192} conv=notrunc status=none && mv "$3" "$2"`, "sh", `${data("b")}/pg_wal/${newer}`, `${data(c)}/pg_wal/${newer}`, `${dir(c)}/${newer}.short`]);
    await must(`${c}: B's history`, ["cp", historyPath, `${data(c)}/pg_wal/00000002.history`]);
  }
  for (const c of standbys) await until(`${c} targets timeline 2`, async () => /new target timeline is 2/.test(await log(c)));

  // Unguarded: the promotion as Patroni asks for it.
  const [unguarded, guarded] = standbys;
  await host.run([bin("pg_ctl"), "promote", "-D", data(unguarded), "-w", "-t", "30"]);
  await until(`${unguarded} either promoted or stopped`, async () => !(await running(unguarded)) || (await psql(unguarded, "SELECT pg_is_in_recovery()")).output.trim() === "f");
  const unguardedRunning = await running(unguarded);
  const panic = /PANIC:\s+.*/.exec(await log(unguarded))?.[0];

  // Guarded: the rendered guard, run as Patroni's pre_promote, then the promotion.
  const guardConfig = `${dir(guarded)}/patroni.yml`;
  await writeFile("guard's patroni.yml", guardConfig, "postgresql:\n  authentication:\n    replication: {username: postgres, password: unused}\n");
  const script = `${dir(guarded)}/timeline-guard.py`;
  const peersAtB: Addressing = { ...addressing, postgres: () => ({ listen: dir("b"), connect: dir("b") }) };
  await writeFile("guard", script, renderTimelineGuard(config, topology, node, peersAtB, { ...layout, tls: undefined, configFile: guardConfig, dataDir: data(guarded), socketDir: dir(guarded) }), "700");
  const guard = await host.run([script, "pre_promote"]);
  const partialKept = (await host.run(["test", "-f", `${data(guarded)}/pg_wal/${newer}.partial`])).code === 0;
  const promote = await host.run([bin("pg_ctl"), "promote", "-D", data(guarded), "-w", "-t", "60"]);
  const result: PartialSegmentResult = {
    replayedLsn, fork, newer, replayedOffset, written, unguardedRunning, ...(panic ? { panic } : {}),
    guardExit: guard.code, guardLog: guard.output, partialKept, promoted: promote.code === 0 && (await running(guarded)),
    promoteOutput: `${promote.output}\n${(await log(guarded)).split("\n").slice(-8).join("\n")}`, writableAfter: false, seconds: 0,
  };
  if (result.promoted) {
    await value(guarded, "CHECKPOINT");
    result.timeline = Number(await value(guarded, "SELECT timeline_id FROM pg_control_checkpoint()"));
    const [rows, maxId] = (await value(guarded, "SELECT count(*) || ' ' || max(id) FROM rows")).split(" ").map(Number);
    Object.assign(result, { rows, maxId });
    result.writableAfter = (await psql(guarded, "INSERT INTO rows VALUES (4001, 'written after the promotion')")).code === 0;
  }
  result.seconds = (Date.now() - started) / 1000;
  return result;
}

/** Stops every instance of the scenario (immediate) and removes its directory. */
export async function cleanUpPartialSegmentScenario(host: ScenarioHost): Promise<void> {
  for (const name of ["a", "b", "c-unguarded", "c-guarded"]) {
    await host.run([`${host.binDir}/pg_ctl`, "stop", "-D", `${host.root}/${name}/data`, "-m", "immediate", "-w"]);
  }
  await host.run(["rm", "-rf", host.root]);
}

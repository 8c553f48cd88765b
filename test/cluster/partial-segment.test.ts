// The promotion that PANICked on a partly streamed segment (README "A promotion that PANICs on a
// partly streamed segment", seen once in a full run): standby C followed the new primary B's timeline,
// its walreceiver restarted at the start of the segment into a new file of that timeline, and B died
// milliseconds later. The file held less than C had already replayed from its own timeline's file; at
// promotion PostgreSQL re-read its last record from the newer file, found zeros and stopped.
//
// Built here deterministically with plain PostgreSQL instances (no Patroni; Unix sockets only, so
// nothing meets the running cluster): A primary, B and two copies of C as standbys. C stops streaming,
// A writes on, B is promoted (timeline 2), and each C gets B's history and B's timeline-2 file of the
// segment with everything after half of what C replayed zeroed (as the walreceiver's new file is).
// Asserted: without the guard this PostgreSQL stops at promotion with that PANIC; with the rendered
// timeline guard run as Patroni runs it (pre_promote), the same state promotes to timeline 3 with every
// row C had replayed, and the short file is kept aside as .partial.
import { chownSync, chmodSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import pg from "pg";
import { renderTimelineGuard } from "../../components/render/index.ts";
import { localAddressing } from "../../local/layout.ts";
import { RUN_AS, isAlive, pollUntil, runAsPostgres, startAsPostgres, stopEverythingUnder } from "../../local/processes.ts";
import { runningCluster } from "./context.ts";

const cluster = runningCluster();
const coordinator = cluster.topology.groups[0][0];
const binDir = cluster.layout.postgres(coordinator).binDir;
const root = join(cluster.paths.stateDir, "partial-segment");
// The guard's script connects to port 5432 (PORTS.postgres) on its socket directory: every instance
// uses it, each with its own socket directory and no TCP listener.
const PORT = 5432;

function postgresIds(): { uid: number; gid: number } {
  const [, , uid, gid] = readFileSync("/etc/passwd", "utf8").split("\n").find((l) => l.startsWith(`${RUN_AS}:`))!.split(":");
  return { uid: Number(uid), gid: Number(gid) };
}

function run(command: string[]): string {
  const r = runAsPostgres(command);
  if (r.status !== 0) throw new Error(`${command.join(" ")}: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

/** One plain PostgreSQL instance in `<root>/<name>`: data in data/, socket and log in the directory. */
class Instance {
  readonly dir: string;
  readonly data: string;
  readonly logFile: string;
  pid = 0;
  constructor(readonly name: string) {
    this.dir = join(root, name);
    this.data = join(this.dir, "data");
    this.logFile = join(this.dir, "postgres.log");
  }
  start(): void {
    this.pid = startAsPostgres(this.name, [
      `${binDir}/postgres`, "-D", this.data, "-c", `port=${PORT}`, "-c", "listen_addresses=", "-c", `unix_socket_directories=${this.dir}`,
      "-c", "wal_level=replica", "-c", "max_wal_senders=8", "-c", "hot_standby=on", "-c", "wal_retrieve_retry_interval=200ms",
      "-c", "shared_buffers=16MB", "-c", "max_connections=20", "-c", "logging_collector=off", "-c", "shared_preload_libraries=",
    ], this.logFile).pid;
  }
  async ready(): Promise<void> {
    const ok = await pollUntil(60_000, 200, async () => {
      if (!isAlive(this.pid)) throw new Error(`${this.name} exited: ${this.log().slice(-1500)}`);
      return (await this.tryQuery("SELECT 1")) ? true : undefined;
    });
    if (!ok) throw new Error(`${this.name} did not accept connections within 60 s`);
  }
  async tryQuery<T extends pg.QueryResultRow>(sql: string): Promise<T[] | undefined> {
    try {
      return await this.query<T>(sql);
    } catch {
      return undefined;
    }
  }
  async query<T extends pg.QueryResultRow>(sql: string): Promise<T[]> {
    const client = new pg.Client({ host: this.dir, port: PORT, user: "postgres", database: "postgres", connectionTimeoutMillis: 3000 });
    await client.connect();
    try {
      return (await client.query<T>(sql)).rows;
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  log(): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, "utf8") : "";
  }
  walFile(name: string): string {
    return join(this.data, "pg_wal", name);
  }
}

const lsnBytes = (lsn: string) => {
  const [high, low] = lsn.split("/");
  return BigInt(`0x${high}`) * 2n ** 32n + BigInt(`0x${low}`);
};

test.after.always(async () => {
  await stopEverythingUnder(root, 5000);
  rmSync(root, { recursive: true, force: true });
});

test.serial("a standby whose newer-timeline segment file holds less than it replayed: PostgreSQL PANICs at promotion; the timeline guard's pre_promote sets the file aside and the promotion keeps every replayed row", async (t) => {
  const { uid, gid } = postgresIds();
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true, mode: 0o711 });
  const a = new Instance("a");
  const b = new Instance("b");
  const standbys = [new Instance("c-unguarded"), new Instance("c-guarded")];
  for (const node of [a, b, ...standbys]) {
    mkdirSync(node.dir, { mode: 0o700 });
    chownSync(node.dir, uid, gid);
  }
  run([`${binDir}/initdb`, "-D", a.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--data-checksums"]);
  a.start();
  await a.ready();
  for (const node of [b, ...standbys]) {
    run([`${binDir}/pg_basebackup`, "-h", a.dir, "-p", String(PORT), "-U", "postgres", "-D", node.data, "-X", "stream", "-c", "fast", "-R"]);
    node.start();
    await node.ready();
  }
  const streaming = await pollUntil(30_000, 200, async () => ((await a.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_replication WHERE state = 'streaming'"))[0].n === 3 ? true : undefined));
  t.true(streaming, "B and both C stream from A");

  // Rows every C replays, in a fresh segment (room for what follows in the same segment).
  await a.query("SELECT pg_switch_wal()");
  await a.query("CREATE TABLE rows (id int PRIMARY KEY, pad text)");
  await a.query("INSERT INTO rows SELECT g, repeat('x', 200) FROM generate_series(1, 4000) g");
  const replayedTarget = (await a.query<{ lsn: string }>("SELECT pg_current_wal_flush_lsn()::text AS lsn"))[0].lsn;
  for (const c of standbys) {
    const caughtUp = await pollUntil(30_000, 100, async () => {
      const [row] = await c.query<{ ok: boolean }>(`SELECT pg_last_wal_replay_lsn() >= '${replayedTarget}'::pg_lsn AS ok`);
      return row.ok ? true : undefined;
    });
    t.true(caughtUp, `${c.name} replayed the rows`);
    // C stops streaming: it replays no more of A's WAL.
    await c.query("ALTER SYSTEM SET primary_conninfo = ''");
    await c.query("SELECT pg_reload_conf()");
  }
  for (const c of standbys) {
    const stopped = await pollUntil(30_000, 100, async () => ((await c.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_wal_receiver"))[0].n === 0 ? true : undefined));
    t.true(stopped, `${c.name}'s walreceiver stopped`);
  }
  const replayedLsn = (await standbys[0].query<{ lsn: string }>("SELECT pg_last_wal_replay_lsn()::text AS lsn"))[0].lsn;
  // The segment's name on timeline 1, from A (a standby cannot name WAL files).
  const replayed = { lsn: replayedLsn, file: (await a.query<{ file: string }>(`SELECT pg_walfile_name('${replayedLsn}'::pg_lsn) AS file`))[0].file };
  for (const c of standbys) t.is((await c.query<{ lsn: string }>("SELECT pg_last_wal_replay_lsn()::text AS lsn"))[0].lsn, replayed.lsn);

  // A writes on (B receives it), dies; B promotes: timeline 2 forks after C's position, same segment.
  await a.query("INSERT INTO rows SELECT g, repeat('y', 200) FROM generate_series(4001, 5000) g");
  const aEnd = (await a.query<{ lsn: string }>("SELECT pg_current_wal_flush_lsn()::text AS lsn"))[0].lsn;
  t.true(await pollUntil(30_000, 100, async () => ((await b.query<{ ok: boolean }>(`SELECT pg_last_wal_replay_lsn() >= '${aEnd}'::pg_lsn AS ok`))[0].ok ? true : undefined)), "B replayed A's last rows");
  run([`${binDir}/pg_ctl`, "stop", "-D", a.data, "-m", "immediate", "-w"]);
  run([`${binDir}/pg_ctl`, "promote", "-D", b.data, "-w", "-t", "60"]);
  const history = readFileSync(b.walFile("00000002.history"), "utf8");
  const fork = history.trim().split("\n").at(-1)!.split("\t")[1];
  t.true(lsnBytes(fork) > lsnBytes(replayed.lsn), `timeline 2 forks at ${fork}, after C's ${replayed.lsn}`);
  const segment = replayed.file.slice(8);
  const newer = `00000002${segment}`;
  t.true(existsSync(b.walFile(newer)), `B holds ${newer}`);
  run([`${binDir}/pg_ctl`, "stop", "-D", b.data, "-m", "immediate", "-w"]);

  // What C's walreceiver had written of B's file when B died: half of what C replayed, zeros after.
  const segmentBytes = BigInt(readFileSync(b.walFile(newer)).length);
  const replayedOffset = Number(lsnBytes(replayed.lsn) % segmentBytes);
  const written = Math.floor(replayedOffset / 2 / 8192) * 8192;
  t.true(written > 0 && written < replayedOffset, `C replayed ${replayedOffset} bytes of the segment; the newer file gets ${written}`);
  const partial = readFileSync(b.walFile(newer));
  partial.fill(0, written);
  for (const c of standbys) {
    for (const [name, content] of [["00000002.history", readFileSync(b.walFile("00000002.history"))], [newer, partial]] as const) {
      writeFileSync(c.walFile(name), content, { mode: 0o600 });
      chownSync(c.walFile(name), uid, gid);
    }
  }
  for (const c of standbys) {
    const switched = await pollUntil(30_000, 100, () => (/new target timeline is 2/.test(c.log()) ? true : undefined));
    t.true(switched, `${c.name} targets timeline 2 (recovery_target_timeline latest)`);
  }

  // Unguarded: PostgreSQL stops at promotion.
  const [unguarded, guarded] = standbys;
  runAsPostgres([`${binDir}/pg_ctl`, "promote", "-D", unguarded.data, "-w", "-t", "30"]);
  const died = await pollUntil(30_000, 100, () => (!isAlive(unguarded.pid) ? true : undefined));
  const panic = /PANIC:\s+invalid magic number 0000 in log segment (\S+)/.exec(unguarded.log());
  t.true(died === true && panic !== null, `without the guard PostgreSQL stops at promotion; its log ends:\n${unguarded.log().split("\n").slice(-8).join("\n")}`);
  t.is(panic?.[1].replace(/,$/, ""), newer);

  // Guarded: the rendered guard, run as Patroni's pre_promote (its peers: B, now dead), then the promotion.
  const config = join(guarded.dir, "patroni.yml");
  writeFileSync(config, "postgresql:\n  authentication:\n    replication: {username: postgres, password: unused}\n", { mode: 0o600 });
  chownSync(config, uid, gid);
  const addressing = localAddressing(cluster.topology);
  const script = join(guarded.dir, "timeline-guard.py");
  writeFileSync(
    script,
    renderTimelineGuard(cluster.config, cluster.topology, coordinator, { ...addressing, postgres: () => ({ listen: b.dir, connect: b.dir }) }, {
      ...cluster.layout.postgres(coordinator),
      tls: undefined,
      configFile: config,
      dataDir: guarded.data,
      socketDir: guarded.dir,
    }),
  );
  chmodSync(script, 0o755);
  const guard = runAsPostgres([script, "pre_promote"]);
  t.is(guard.status, 0, guard.stderr);
  t.regex(guard.stderr, new RegExp(`${newer} holds ${written} bytes of the ${replayedOffset} this member replayed from 00000001${segment}: set aside as ${newer}\\.partial`));
  t.true(existsSync(guarded.walFile(`${newer}.partial`)));
  const promoted = runAsPostgres([`${binDir}/pg_ctl`, "promote", "-D", guarded.data, "-w", "-t", "60"]);
  t.is(promoted.status, 0, `${promoted.stderr}\n${guarded.log().split("\n").slice(-8).join("\n")}`);
  t.true(isAlive(guarded.pid), "PostgreSQL still runs");
  t.false((await guarded.query<{ r: boolean }>("SELECT pg_is_in_recovery() AS r"))[0].r, "a primary");
  await guarded.query("CHECKPOINT");
  t.is((await guarded.query<{ tli: number }>("SELECT timeline_id AS tli FROM pg_control_checkpoint()"))[0].tli, 3, "a new timeline past B's");
  const rows = (await guarded.query<{ n: number; max: number }>("SELECT count(*)::int AS n, max(id) AS max FROM rows"))[0];
  t.deepEqual(rows, { n: 4000, max: 4000 }, "every row it had replayed");
  await guarded.query("INSERT INTO rows VALUES (4001, 'written after the promotion')");
  t.log(`C replayed to ${replayed.lsn} on timeline 1; B forked timeline 2 at ${fork}; the newer file held ${written} of ${replayedOffset} bytes`);
  t.log(`unguarded: ${panic?.[0]}; guarded: promoted to timeline 3 with ${rows.n} rows, ${newer}.partial kept aside`);
  t.truthy(readdirSync(join(guarded.data, "pg_wal")).find((f) => f === "00000003.history"));
});

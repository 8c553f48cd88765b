// The timeline guard (components/render/timeline-guard.ts): patroni.yml runs it as restore_command
// (history files only) and pre_promote on every node of every platform; the script, run against a
// fake psql and pg_ctl, fetches a history file from the member that has it and refuses (and stops
// PostgreSQL) exactly when the candidate's WAL went past a newer timeline's fork.
import test from "ava";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { parseClusterConfig, planTopology } from "../../components/spec.ts";
import { HISTORY_FETCH_SECONDS, renderPostgresNode, renderTimelineGuard, restoreCommand } from "../../components/render/index.ts";
import { containerAddressing, containerLayout, dockerHostNaming } from "../../components/render/container.ts";
import { placeholderCertificates } from "../../components/shipped-files.ts";
import { localAddressing, localLayout, localPaths } from "../../local/layout.ts";
import type { ClusterSecrets } from "../../components/render/index.ts";

const config = parseClusterConfig({});
const SECRETS: ClusterSecrets = { superuser: "su-pw", replication: "repl-pw", rewind: "rewind-pw", restApi: "rest-pw", app: "app-pw" };
const topology = planTopology(config);
const local = localAddressing(topology);
const coordinator = topology.groups[0][0];
const [peerB, peerC] = topology.groups[0].slice(1).map((n) => local.postgres(n).connect);

// Timeline 2's history as PostgreSQL writes it: parent timeline, switch point, reason.
const HISTORY_2 = "1\t0/41D0478\tno recovery target specified\n";

test("every node's patroni.yml runs its own guard as restore_command and pre_promote, on the containers and locally", (t) => {
  for (const [name, addressing, layout] of [
    ["container", containerAddressing(config, topology, dockerHostNaming), containerLayout(config)],
    ["local", local, localLayout(config, localPaths("/state"))],
  ] as const) {
    for (const node of topology.groups.flat()) {
      const paths = layout.postgres(node);
      const files = renderPostgresNode(config, topology, node, addressing, layout, SECRETS, placeholderCertificates(config));
      const yml = parseYaml(files.find((f) => f.path === paths.configFile)!.content);
      t.is(yml.postgresql.pre_promote, paths.timelineGuardScript, `${name} ${node.name}`);
      t.is(yml.postgresql.recovery_conf.restore_command, restoreCommand(paths.timelineGuardScript));
      const guard = files.find((f) => f.path === paths.timelineGuardScript);
      t.truthy(guard?.executable, `${name} ${node.name}: the guard is shipped, executable`);
      t.false(guard!.secret, "it holds no password (read from patroni.yml)");
      // It asks its own group's other members, and nobody else.
      const peers = topology.groups[node.group].filter((n) => n.name !== node.name).map((n) => addressing.postgres(n).connect);
      t.true(guard!.content.includes(`PEERS = ${JSON.stringify(peers)}`), guard!.content.split("\n").find((l) => l.startsWith("PEERS")));
    }
  }
  const container = containerLayout(config).postgres(coordinator);
  t.is(container.timelineGuardScript, "/etc/dpc/timeline-guard.py");
  t.true(renderTimelineGuard(config, topology, coordinator, containerAddressing(config, topology, dockerHostNaming), container).includes('PEER_TLS = "sslmode=verify-full sslrootcert=/etc/dpc/tls/ca.crt"'));
});

/** A node's directory with the guard rendered against a fake psql and pg_ctl in it. */
function fakeNode(psql: string): { dir: string; script: string; run: (...args: string[]) => { status: number | null; stderr: string; seconds: number } } {
  const dir = mkdtempSync(join(tmpdir(), "dpc-guard-"));
  const bin = join(dir, "bin");
  mkdirSync(bin);
  mkdirSync(join(dir, "data", "pg_wal"), { recursive: true });
  mkdirSync(join(dir, "socket"));
  // Each fake records its arguments and the password it was given (in the environment).
  writeFileSync(join(bin, "psql"), `#!/bin/sh\necho "$* PGPASSWORD=$PGPASSWORD" >> ${dir}/psql.calls\n${psql}\n`);
  writeFileSync(join(bin, "pg_ctl"), `#!/bin/sh\necho "$*" >> ${dir}/pg_ctl.calls\n`);
  chmodSync(join(bin, "psql"), 0o755);
  chmodSync(join(bin, "pg_ctl"), 0o755);
  writeFileSync(join(dir, "patroni.yml"), "postgresql:\n  authentication:\n    replication: {username: replicator, password: s3cret}\n");
  const paths = { ...localLayout(config, localPaths("/state")).postgres(coordinator), configFile: join(dir, "patroni.yml"), binDir: bin, dataDir: join(dir, "data"), socketDir: join(dir, "socket") };
  const script = join(dir, "guard.py");
  writeFileSync(script, renderTimelineGuard(config, topology, coordinator, local, paths));
  chmodSync(script, 0o755);
  return {
    dir,
    script,
    run: (...args) => {
      const started = Date.now();
      const r = spawnSync("python3", [script, ...args], { cwd: join(dir, "data"), encoding: "utf8" });
      return { status: r.status, stderr: r.stderr, seconds: (Date.now() - started) / 1000 };
    },
  };
}

// The fake psql: peer B holds timeline 2's history; the node's own socket answers IDENTIFY_SYSTEM at
// $POSITION on timeline 1; peer C answers nothing (exit 2, as psql does when it cannot connect).
const FAKE_PSQL = (position: string, bHas = true, cSleeps = false) => `
case "$*" in
  *host=${peerB}\\ *"TIMELINE_HISTORY 2"*) ${bHas ? `printf '%s\\0' 00000002.history; printf '${HISTORY_2.replace(/\t/g, "\\t").replace(/\n/g, "\\n")}\\n'; exit 0` : "exit 2"} ;;
  *host=${peerC}\\ *) ${cSleeps ? "sleep 30; " : ""}exit 2 ;;
  *"/socket "*IDENTIFY_SYSTEM*) printf '%s\\0%s\\0%s\\0\\n' 7000000000000000001 1 ${position}; exit 0 ;;
esac
exit 2`;

test("restore: a history file comes from the member that has it, verbatim, with the password in the environment only", (t) => {
  const node = fakeNode(FAKE_PSQL("0/50000A0"));
  try {
    const r = node.run("restore", "00000002.history", "pg_wal/RECOVERYHISTORY");
    t.is(r.status, 0, r.stderr);
    t.is(readFileSync(join(node.dir, "data", "pg_wal", "RECOVERYHISTORY"), "utf8"), HISTORY_2);
    t.regex(r.stderr, new RegExp(`00000002.history fetched from ${peerB.replace(/\./g, "\\.")}`));
    const calls = readFileSync(join(node.dir, "psql.calls"), "utf8");
    t.regex(calls, /replication=true/);
    t.regex(calls, /sslmode=verify-full sslrootcert=\S+ca\.crt/);
    t.regex(calls, /-c TIMELINE_HISTORY 2 PGPASSWORD=s3cret/);
    t.false(/password=/.test(calls), "no password on the command line");
    // No member has timeline 3's history: not found, nothing written.
    const missing = node.run("restore", "00000003.history", "pg_wal/RECOVERYHISTORY3");
    t.is(missing.status, 1);
    t.false(existsSync(join(node.dir, "data", "pg_wal", "RECOVERYHISTORY3")));
  } finally {
    rmSync(node.dir, { recursive: true, force: true });
  }
});

test("restore: a member whose own history file of that name differs stops PostgreSQL's recovery (exit > 125), keeping its file", (t) => {
  const node = fakeNode(FAKE_PSQL("0/50000A0"));
  try {
    const mine = "1\t0/3000000\tno recovery target specified\n";
    writeFileSync(join(node.dir, "data", "pg_wal", "00000002.history"), mine);
    const r = node.run("restore", "00000002.history", "pg_wal/RECOVERYHISTORY");
    t.true(r.status! > 125, `exit ${r.status}: PostgreSQL treats it as fatal`);
    t.regex(r.stderr, /refusing to recover: our 00000002\.history .* differs from/);
    t.false(existsSync(join(node.dir, "data", "pg_wal", "RECOVERYHISTORY")));
    t.is(readFileSync(join(node.dir, "data", "pg_wal", "00000002.history"), "utf8"), mine);
    // The same file as the members': fetched as usual.
    writeFileSync(join(node.dir, "data", "pg_wal", "00000002.history"), HISTORY_2);
    t.is(node.run("restore", "00000002.history", "pg_wal/RECOVERYHISTORY").status, 0);
  } finally {
    rmSync(node.dir, { recursive: true, force: true });
  }
});

test("restore: a standby already serving asks nobody (its walreceiver brings the primary's histories); a promotion asks, for files it lacks", (t) => {
  const node = fakeNode(FAKE_PSQL("0/50000A0"));
  const calls = () => (existsSync(join(node.dir, "psql.calls")) ? readFileSync(join(node.dir, "psql.calls"), "utf8") : "");
  try {
    // postmaster.pid's 8th line: "ready" once a hot standby accepts connections, "standby" before.
    for (const status of ["ready   ", "standby "]) {
      writeFileSync(join(node.dir, "data", "postmaster.pid"), `4242\n${node.dir}/data\n1796133565\n5432\n/run\n*\n  1234  5678\n${status}\n`);
      t.is(node.run("restore", "00000002.history", "pg_wal/RECOVERYHISTORY").status, 1, status);
    }
    t.is(calls(), "", "no member asked");
    // pre_promote's mark: the promotion's probes ask the members...
    t.is(node.run().status, 1, "diverged: refused (and the mark left)");
    t.true(existsSync(join(node.dir, "socket", "timeline-guard.promoting")));
    t.is(node.run("restore", "00000002.history", "pg_wal/RECOVERYHISTORY").status, 0);
    // ...except for a history file it has itself (the parent's, read to write the new one).
    writeFileSync(join(node.dir, "data", "pg_wal", "00000002.history"), HISTORY_2);
    const before = calls();
    t.is(node.run("restore", "00000002.history", "pg_wal/RECOVERYHISTORY").status, 1);
    t.is(calls(), before);
  } finally {
    rmSync(node.dir, { recursive: true, force: true });
  }
});

test("restore: a member that does not answer costs at most the fetch bound, and none when another has the file", (t) => {
  const node = fakeNode(FAKE_PSQL("0/50000A0", true, true));
  try {
    const found = node.run("restore", "00000002.history", "pg_wal/RECOVERYHISTORY");
    t.is(found.status, 0, found.stderr);
    t.true(found.seconds < 2, `answered by B without waiting for C: ${found.seconds} s`);
    const none = fakeNode(FAKE_PSQL("0/50000A0", false, true));
    try {
      const r = none.run("restore", "00000002.history", "pg_wal/RECOVERYHISTORY");
      t.is(r.status, 1);
      t.true(r.seconds <= HISTORY_FETCH_SECONDS + 1.5, `bounded: ${r.seconds} s`);
    } finally {
      rmSync(none.dir, { recursive: true, force: true });
    }
  } finally {
    rmSync(node.dir, { recursive: true, force: true });
  }
});

test("restore_command: WAL segments are refused by the shell without starting the script; history files reach it", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "dpc-restore-"));
  try {
    const script = join(dir, "guard.py");
    writeFileSync(script, `#!/bin/sh\necho "$*" > ${dir}/ran\n`);
    chmodSync(script, 0o755);
    const run = (file: string) => spawnSync("sh", ["-c", restoreCommand(script).replace(/%f/g, file).replace(/%p/g, "pg_wal/RECOVERYXLOG")], { encoding: "utf8" });
    t.is(run("000000020000000000000004").status, 1);
    t.is(run("00000002.partial").status, 1);
    t.false(existsSync(join(dir, "ran")), "the script never started for a segment");
    t.is(run("00000002.history").status, 0);
    t.is(readFileSync(join(dir, "ran"), "utf8"), "restore 00000002.history pg_wal/RECOVERYXLOG\n");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("pre_promote: WAL past a newer timeline's fork refuses and stops PostgreSQL; at or before the fork, or no newer timeline, promotes", (t) => {
  const diverged = fakeNode(FAKE_PSQL("0/50000A0"));
  try {
    const r = diverged.run();
    t.is(r.status, 1, r.stderr);
    t.regex(r.stderr, /refusing to promote: \S+ holds 00000002\.history, which left timeline 1 at 0\/41D0478, and our WAL goes on to 0\/50000A0/);
    t.is(readFileSync(join(diverged.dir, "pg_ctl.calls"), "utf8"), `stop -D ${join(diverged.dir, "data")} -m fast -w -t 60\n`);
  } finally {
    rmSync(diverged.dir, { recursive: true, force: true });
  }
  for (const position of ["0/41D0478", "0/4000000"]) {
    const behind = fakeNode(FAKE_PSQL(position));
    try {
      const r = behind.run("pre_promote");
      t.is(r.status, 0, r.stderr);
      t.false(existsSync(join(behind.dir, "pg_ctl.calls")), `${position}: PostgreSQL left running`);
    } finally {
      rmSync(behind.dir, { recursive: true, force: true });
    }
  }
  const alone = fakeNode(FAKE_PSQL("0/50000A0", false));
  try {
    const r = alone.run();
    t.is(r.status, 0, r.stderr);
    t.regex(r.stderr, /no member holds 00000002\.history: promoting from timeline 1 at 0\/50000A0/);
  } finally {
    rmSync(alone.dir, { recursive: true, force: true });
  }
});

/** WAL-like bytes (no zero byte, so no prefix of it looks unwritten), deterministic. */
function walBytes(length: number, seed: number): Buffer {
  const bytes = Buffer.alloc(length);
  for (let i = 0; i < length; i++) bytes[i] = 1 + ((i * 31 + seed) % 251);
  return bytes;
}

const SEGMENT = 16 * 1024 * 1024;

test("pre_promote: a newer timeline's segment holding less than the candidate replayed is set aside as .partial (PostgreSQL would PANIC re-reading it); one that holds it all, or differs otherwise, or is the only file, stays", (t) => {
  // Timeline 1's segment 4 as replayed; timeline 2's file of it as a walreceiver left it: the same
  // WAL up to 1 MB, zeros after. B's fork (HISTORY_2) is at 0/41D0478.
  const replayed = walBytes(SEGMENT, 7);
  const partial = Buffer.alloc(SEGMENT);
  replayed.copy(partial, 0, 0, 1 << 20);
  const cases: { position: string; newer: Buffer; own: boolean; setAside: boolean; why: string }[] = [
    { position: "0/41D0478", newer: partial, own: true, setAside: true, why: "replayed to 1.8 MB, the newer file holds 1 MB" },
    { position: "0/4080000", newer: partial, own: true, setAside: false, why: "replayed to 0.5 MB: the newer file holds all of it" },
    { position: "0/41D0478", newer: walBytes(SEGMENT, 9), own: true, setAside: false, why: "different WAL, not zeros: not ours to judge" },
    { position: "0/41D0478", newer: partial, own: false, setAside: false, why: "no file of its own timeline: the newer one is what it replayed" },
  ];
  for (const c of cases) {
    const node = fakeNode(FAKE_PSQL(c.position));
    try {
      const wal = join(node.dir, "data", "pg_wal");
      if (c.own) writeFileSync(join(wal, "000000010000000000000004"), replayed);
      writeFileSync(join(wal, "000000020000000000000004"), c.newer);
      // A newer timeline's segment after the candidate's end is never read for it: left alone.
      writeFileSync(join(wal, "000000020000000000000005"), Buffer.alloc(SEGMENT));
      const r = node.run("pre_promote");
      t.is(r.status, 0, `${c.why}: ${r.stderr}`);
      t.is(existsSync(join(wal, "000000020000000000000004.partial")), c.setAside, c.why);
      t.is(existsSync(join(wal, "000000020000000000000004")), !c.setAside, c.why);
      t.true(existsSync(join(wal, "000000020000000000000005")));
      if (c.own) t.true(readFileSync(join(wal, "000000010000000000000004")).equals(replayed), "its own timeline's file untouched");
      if (c.setAside) t.regex(r.stderr, /000000020000000000000004 holds 1048576 bytes of the 1901688 this member replayed from 000000010000000000000004: set aside/);
    } finally {
      rmSync(node.dir, { recursive: true, force: true });
    }
  }
});

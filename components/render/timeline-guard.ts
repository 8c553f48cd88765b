// Unique timeline IDs without a WAL archive, and no promotion of a member whose WAL went past a newer
// timeline's fork: Patroni's restore_command and pre_promote script on every node.
//
// Why (README "Second failure", from the nodes' logs, Patroni 4.0.7, PostgreSQL 15): a crashed first
// primary A, recovered by Patroni in single-user mode (rewind.py ensure_clean_shutdown), ends its
// timeline 1 past the point where B forked timeline 2. If B dies before it writes /history to the DCS
// (ha.py update_cluster_history, its first HA loop after the promotion), nobody can check A's timeline
// (ha.py _is_healthiest_node: check_timeline compares with /history), A's WAL position on timeline 1
// compares "ahead" of C's on timeline 2, A wins and promotes: PostgreSQL picks one past the newest
// history file it can find (xlog.c StartupXLOG -> timeline.c findNewestTimeLine/existsTimeLineHistory,
// which looks in pg_wal and, in archive recovery, asks restore_command). A has no 00000002.history:
// a second timeline 2, and C and B skip pg_rewind (rewind.py _check_timeline_and_lsn: same ID).
//
// The two halves:
// - restore_command: for `*.history` files only, the script asks the group's other members for the
//   file over a replication connection (walsender command TIMELINE_HISTORY, which any member, primary
//   or standby, answers from its pg_wal). A promotion then sees every timeline a reachable member
//   holds and picks an unused ID; a standby started with recovery_target_timeline 'latest' targets
//   the newest one, and PostgreSQL refuses to start it if its own WAL went past that timeline's fork
//   (xlogrecovery.c: "requested timeline N is not a child of this server's history"): Patroni's
//   recover() then rewinds it against the new leader instead of running it unrewound. WAL segments
//   are refused at once by the shell (no archive exists): streaming stays the only WAL source.
//   Members are asked at start-up and during a promotion only (the mark pre_promote leaves): a
//   standby already serving leaves its timeline switches to the walreceiver, which fetches the
//   primary's history files itself, so following a new primary is not slowed down.
//   At start-up, a member whose own history file of that name differs (it promoted, and died before any other
//   member received its timeline, so it acknowledged nothing there; the next promotion reused the
//   ID) stops recovery instead: it stays down, loudly, until reinitialized, and never streams the
//   group's timeline on top of its own.
// - pre_promote (Patroni runs it after taking the leader key, before `pg_ctl promote`; non-zero:
//   the key is released and the node skips the race for ttl, ha.py enforce_primary_role): refuses when
//   a member holds the history of the timeline after the candidate's own and the candidate's WAL went
//   past that fork, and stops the candidate's PostgreSQL (a standby: nothing to lose), so that it no
//   longer reports a WAL position that makes the other members defer to it (ha.py
//   _is_healthiest_node) and its restart meets the refusal above. The member that holds the newer
//   timeline then wins the next race.
import type { ClusterConfig, PostgresNode, Topology } from "../spec.ts";
import { PORTS, type Addressing, type PostgresLayout } from "./types.ts";

/** Where the script runs: the node's Patroni config (read for the replication credentials), PostgreSQL. */
export interface TimelineGuardPaths extends PostgresLayout {
  configFile: string;
}

/**
 * Seconds one history request to one member may take (connect, TLS, SCRAM, one command), requests to
 * all members running side by side: the most a promotion waits per probe for a member that does not
 * answer (a dead pod's address that drops packets; a killed local process or a removed Docker name
 * fails at once). libpq's connect_timeout is whole seconds; the process is killed at this bound.
 */
export const HISTORY_FETCH_SECONDS = 3;

/**
 * PostgreSQL's restore_command: WAL segments and anything but a timeline history refused by the shell
 * (a fork of /bin/sh, no Python start: a standby that lost its primary probes every
 * wal_retrieve_retry_interval, and at start-up every segment is tried from the "archive" first);
 * history files fetched by the script. `%f` is a file name PostgreSQL makes (hex digits), `%p` a
 * path under the data directory.
 */
export function restoreCommand(scriptPath: string): string {
  return `case %f in *.history) exec '${scriptPath}' restore %f %p ;; *) exit 1 ;; esac`;
}

/**
 * The script (Python 3, Patroni's interpreter; PyYAML comes with Patroni). Modes:
 * `restore FILE PATH` (restore_command) and `pre_promote` (Patroni's pre_promote, run without
 * arguments when the command has none). The replication password is read from patroni.yml (the
 * script holds no secret) and passed to psql in its environment (never on a command line).
 */
export function renderTimelineGuard(config: ClusterConfig, topology: Topology, node: PostgresNode, addressing: Addressing, paths: TimelineGuardPaths): string {
  const peers = topology.groups[node.group].filter((n) => n.name !== node.name).map((n) => addressing.postgres(n).connect);
  // The same libpq options as Patroni's own connections to other members (patroni.ts clientTlsOptions).
  const tls = paths.tls ? `sslmode=verify-full sslrootcert=${paths.tls.caFile}` : "";
  return `#!/usr/bin/env python3
# Rendered by distributed-postgres-cluster; do not edit (components/render/timeline-guard.ts).
# ${node.name}: restore_command for timeline history files (fetched from the group's other members)
# and Patroni's pre_promote check (no promotion of WAL that went past a newer timeline's fork).
import os, queue, re, subprocess, sys, threading, time
import yaml

CONFIG_FILE = ${JSON.stringify(paths.configFile)}
PSQL = ${JSON.stringify(`${paths.binDir}/psql`)}
PG_CTL = ${JSON.stringify(`${paths.binDir}/pg_ctl`)}
DATA_DIR = ${JSON.stringify(paths.dataDir)}
SOCKET_DIR = ${JSON.stringify(paths.socketDir)}
PORT = "${PORTS.postgres}"
# The other members of Citus group ${node.group}: where history files are asked for.
PEERS = ${JSON.stringify(peers)}
# libpq options for the peers: their certificates verified against the cluster CA and by name.
PEER_TLS = ${JSON.stringify(tls)}
FETCH_SECONDS = ${HISTORY_FETCH_SECONDS}
# Left by pre_promote: the probes of the promotion that follows ask the members. In the socket
# directory: never copied by pg_basebackup or pg_rewind, as a file of the data directory would be.
PROMOTING_MARK = os.path.join(SOCKET_DIR, "timeline-guard.promoting")
PROMOTION_SECONDS = 60
HISTORY_FILE = re.compile(r"^([0-9A-F]{8})\\.history$")
WAL_SEGMENT = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$")


def log(message):
    # Timed like PostgreSQL's and Patroni's own lines (UTC), next to which it lands in the node's log.
    now = time.time()
    print("%s.%03d UTC timeline guard: %s" % (time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now)), int(now * 1000) % 1000, message),
          file=sys.stderr, flush=True)


def replication_credentials():
    with open(CONFIG_FILE) as f:
        auth = yaml.safe_load(f)["postgresql"]["authentication"]["replication"]
    return auth["username"], str(auth["password"])


def replication_command(host, command, credentials, tls=""):
    """One walsender command as the replication user; its single row's fields as bytes, or None."""
    user, password = credentials
    conninfo = "host=%s port=%s user=%s dbname=replication replication=true connect_timeout=2 %s" % (host, PORT, user, tls)
    try:
        result = subprocess.run([PSQL, "-X", "-A", "-t", "-z", "-d", conninfo, "-c", command], capture_output=True,
                                env=dict(os.environ, PGPASSWORD=password), timeout=FETCH_SECONDS)
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0 or not result.stdout:
        return None
    # Unaligned, tuples only, fields separated by a zero byte; psql ends the row with one newline.
    row = result.stdout[:-1] if result.stdout.endswith(b"\\n") else result.stdout
    return row.split(b"\\0")


def fetch_history(name, credentials):
    """(member, content) of the history file \`name\` from the first member that has it, or None.
    All members are asked at once; the answer is taken as soon as one has it."""
    tli = int(HISTORY_FILE.match(name).group(1), 16)
    answers = queue.Queue()

    def ask(peer):
        fields = replication_command(peer, "TIMELINE_HISTORY %d" % tli, credentials, PEER_TLS)
        if fields and len(fields) == 2 and fields[0].decode() == name:
            content = fields[1]
            # bytea (PostgreSQL 16+) is printed as hex; 15 sends the raw text.
            if content.startswith(b"\\\\x"):
                content = bytes.fromhex(content[2:].decode())
            answers.put((peer, content))
        else:
            answers.put(None)

    for peer in PEERS:
        threading.Thread(target=ask, args=(peer,), daemon=True).start()
    deadline = time.monotonic() + FETCH_SECONDS + 1
    for _ in PEERS:
        try:
            answer = answers.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        if answer is not None:
            return answer
    return None


def lsn(text):
    high, low = text.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def fork_point(history, parent_tli):
    """Where the history's timeline left \`parent_tli\` (switch point, bytes), or None if it never was on it."""
    for line in history.decode().splitlines():
        fields = line.split("#")[0].split()
        if len(fields) >= 2 and int(fields[0]) == parent_tli:
            return lsn(fields[1])
    return None


def probe_mode():
    """"running": a standby already serving (postmaster.pid status ready or standby) and not being
    promoted: its walreceiver brings the primary's history files into pg_wal, which PostgreSQL reads
    when restore_command finds nothing; asking the members would only slow its timeline switch (three
    probes of about 0.5 s each were seen to delay a standby past the new primary's second quorum
    resolver run). "promotion": pre_promote left its mark less than PROMOTION_SECONDS ago.
    "start-up": anything else (the probes that decide whether this data directory may run at all)."""
    try:
        if time.time() - os.path.getmtime(PROMOTING_MARK) < PROMOTION_SECONDS:
            return "promotion"
    except OSError:
        pass
    try:
        with open(os.path.join(DATA_DIR, "postmaster.pid")) as f:
            lines = f.read().split("\\n")
        if len(lines) > 7 and lines[7].strip() in ("ready", "standby"):
            return "running"
    except OSError:
        pass
    return "start-up"


def restore(name, path):
    if not HISTORY_FILE.match(name):
        return 1
    mode = probe_mode()
    own = os.path.join(DATA_DIR, "pg_wal", name)
    if mode == "running" or (mode == "promotion" and os.path.exists(own)):
        return 1
    got = fetch_history(name, replication_credentials())
    if got is None:
        return 1
    peer, content = got
    # PostgreSQL asks the "archive" before its own pg_wal, and keeps what it gets (xlogarchive.c
    # RestoreArchivedFile, timeline.c readTimeLineHistory). A different file of the same name here is
    # a timeline this member made and nobody else received (it promoted and died at once): its WAL on
    # that timeline is not the group's. An exit code above 125 stops PostgreSQL's recovery (FATAL)
    # instead of streaming the group's timeline on top of it: the member stays down, loudly, until
    # reinitialized.
    if os.path.exists(own):
        with open(own, "rb") as f:
            mine = f.read()
        if mine != content:
            log("refusing to recover: our %s (%r) differs from %s's (%r): this member's WAL on that timeline "
                "is not the group's; reinitialize it" % (name, mine.decode(errors="replace"), peer, content.decode(errors="replace")))
            return 126
    temporary = path + ".fetching"
    with open(temporary, "wb") as f:
        f.write(content)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)
    log("%s fetched from %s" % (name, peer))
    return 0


def segment_start(name, segment_size):
    """Where the WAL segment file \`name\` begins (bytes; xlog_internal.h XLogFromFileName)."""
    m = WAL_SEGMENT.match(name)
    return (int(m.group(2), 16) * (0x100000000 // segment_size) + int(m.group(3), 16)) * segment_size


def first_difference(a, b):
    """Offset of the first byte where \`a\` and \`b\` differ (the shorter one's length when it is a prefix)."""
    n, offset = min(len(a), len(b)), 0
    while offset < n and a[offset:offset + 8192] == b[offset:offset + 8192]:
        offset += 8192
    while offset < n and a[offset] == b[offset]:
        offset += 1
    return offset


def set_aside_short_segments(tli, position):
    """Renames to \`<name>.partial\` every segment file of a newer timeline than \`tli\` (the one this
    standby replays) that holds less of the WAL before \`position\` (the end of what it replayed) than
    the file of its own timeline: the bytes differ, and the newer file's are zeros from the first
    difference on.

    Why: a standby that followed a new primary's timeline restarts streaming at the start of the
    segment, into a new zero-filled file named with the new timeline (walreceiver.c XLogWalRcvWrite,
    xlog.c XLogFileInit). If that primary dies within milliseconds, the file holds less than the
    standby already replayed from its own timeline's file. At promotion PostgreSQL reads its last
    record again from the newest timeline's file of that segment (xlogrecovery.c FinishWalRecovery,
    XLogFileReadAnyTLI), finds zeros and stops: "PANIC: invalid magic number 0000 in log segment"
    (README "A promotion that PANICked on a partly streamed segment"; PostgreSQL 15 and 17). The file
    set aside holds nothing the own timeline's file lacks: they are the same WAL up to the difference."""
    wal = os.path.join(DATA_DIR, "pg_wal")
    names = set(os.listdir(wal))
    set_aside = []
    for name in sorted(names):
        m = WAL_SEGMENT.match(name)
        if not m or int(m.group(1), 16) <= tli:
            continue
        path = os.path.join(wal, name)
        size = os.path.getsize(path)
        if size < 1 << 20 or size & (size - 1):
            continue
        start = segment_start(name, size)
        if start >= position:
            continue  # WAL after ours only: never read for it
        # The file PostgreSQL replayed from: its own timeline's, or an older one's (XLogFileReadAnyTLI).
        own = next(("%08X%s" % (t, name[8:]) for t in range(tli, 0, -1) if "%08X%s" % (t, name[8:]) in names), None)
        if own is None:
            continue  # the newer file is the one it replayed from
        needed = min(position, start + size) - start
        with open(path, "rb") as f:
            newer = f.read(needed)
        with open(os.path.join(wal, own), "rb") as f:
            replayed = f.read(needed)
        first = first_difference(newer, replayed)
        if first == needed:
            continue  # the same WAL
        if newer[first:].strip(b"\\0"):
            log("%s and %s differ before %X/%X other than by unwritten zeros: left as they are" % (name, own, position >> 32, position & 0xFFFFFFFF))
            continue
        os.replace(path, path + ".partial")
        set_aside.append(name)
        log("%s holds %d bytes of the %d this member replayed from %s: set aside as %s.partial (PostgreSQL would re-read "
            "its last record from it at promotion and stop on zeros)" % (name, first, needed, own, name))
    if set_aside:
        fd = os.open(wal, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def pre_promote():
    # PostgreSQL's own probes during this promotion ask the members too (probe_mode).
    try:
        open(PROMOTING_MARK, "w").close()
    except OSError as error:
        log("cannot leave the promotion mark (%s): the promotion's probes look in pg_wal only" % error)
    credentials = replication_credentials()
    # A standby's IDENTIFY_SYSTEM: the timeline it replays and the WAL it holds (flushed or replayed).
    ident = replication_command(SOCKET_DIR, "IDENTIFY_SYSTEM", credentials)
    if not ident or len(ident) < 3:
        log("own timeline unknown: promotion left to Patroni")
        return 0
    tli, position = int(ident[1]), lsn(ident[2].decode())
    try:
        set_aside_short_segments(tli, position)
    except Exception as error:  # a check that cannot run must not block the promotion
        log("could not check pg_wal for short segments of newer timelines (%r): promoting as it is" % (error,))
    name = "%08X.history" % (tli + 1)
    got = fetch_history(name, credentials)
    if got is None:
        log("no member holds %s: promoting from timeline %d at %s" % (name, tli, ident[2].decode()))
        return 0
    peer, content = got
    fork = fork_point(content, tli)
    if fork is None or position <= fork:
        log("%s holds %s; our WAL (%s on timeline %d) does not go past its fork: promoting" % (peer, name, ident[2].decode(), tli))
        return 0
    log("refusing to promote: %s holds %s, which left timeline %d at %X/%X, and our WAL goes on to %s; "
        "stopping PostgreSQL so that a member on the newer timeline leads and this one is rewound"
        % (peer, name, tli, fork >> 32, fork & 0xFFFFFFFF, ident[2].decode()))
    subprocess.run([PG_CTL, "stop", "-D", DATA_DIR, "-m", "fast", "-w", "-t", "60"], capture_output=True)
    return 1


def main(argv):
    if len(argv) == 4 and argv[1] == "restore":
        return restore(argv[2], argv[3])
    if len(argv) == 1 or argv[1] == "pre_promote":
        return pre_promote()
    log("unknown arguments: %s" % " ".join(argv[1:]))
    return 2


sys.exit(main(sys.argv))
`;
}

// The crash-of-PostgreSQL timeline read from a node's log: lines as Patroni 4.0.7 and PostgreSQL 15
// wrote them in the second-failure test's crash (the coordinator primary's postmaster killed at
// 13:25:55.240).
import test from "ava";
import { crashTimeline, describeCrashTimeline, lineTime } from "../../local/crash-timeline.ts";

const killedAt = Date.parse("2026-12-01T13:25:55.240Z");
const log = [
  "2026-12-01 13:24:16.001 UTC [9000] LOG:  database system is ready to accept connections",
  "2026-12-01 13:25:54,887 INFO: no action. I am (dpc-coordinator-0), the leader with the lock",
  "2026-12-01 13:25:55.242 UTC [10464] FATAL:  terminating connection due to unexpected postmaster exit",
  "2026-12-01 13:25:55,740 WARNING: Postgresql is not running.",
  "2026-12-01 13:25:55,787 INFO: pg_controldata:",
  "  Database cluster state: in production",
  "2026-12-01 13:25:55,831 INFO: starting primary after failure",
  "2026-12-01 13:25:57.391 UTC [14928] LOG:  starting PostgreSQL 15.20 (Debian 15.20-0+deb12u1) on x86_64-pc-linux-gnu",
  "2026-12-01 13:25:57,393 INFO: postmaster pid=14928",
  "2026-12-01 13:25:57.418 UTC [14968] LOG:  database system was interrupted; last known up at 2026-12-01 13:24:16 UTC",
  "2026-12-01 13:25:57.644 UTC [14968] LOG:  database system was not properly shut down; automatic recovery in progress",
  "2026-12-01 13:25:57.648 UTC [14968] LOG:  redo starts at 0/200BE50",
  "2026-12-01 13:25:57.668 UTC [14968] LOG:  redo done at 0/43158B0 system usage: CPU: user: 0.00 s, system: 0.00 s, elapsed: 0.02 s",
  "2026-12-01 13:25:57.694 UTC [14966] LOG:  checkpoint starting: end-of-recovery immediate wait",
  "2026-12-01 13:25:58.156 UTC [14966] LOG:  checkpoint complete: wrote 467 buffers (2.9%); 0 WAL file(s) added",
  "2026-12-01 13:25:58.172 UTC [14928] LOG:  database system is ready to accept connections",
  "2026-12-01 13:30:00.000 UTC [14928] LOG:  checkpoint complete: wrote 3 buffers",
].join("\n");

test("log times: Patroni's comma and PostgreSQL's point, UTC; none on a continuation line", (t) => {
  t.is(lineTime("2026-12-01 13:25:55,740 WARNING: x"), Date.parse("2026-12-01T13:25:55.740Z"));
  t.is(lineTime("2026-12-01 13:25:57.418 UTC [1] LOG:  x"), Date.parse("2026-12-01T13:25:57.418Z"));
  t.true(Number.isNaN(lineTime("  Database cluster state: in production")));
});

test("each event at its first line after the kill, in seconds", (t) => {
  const { timeline, decision } = crashTimeline(log, killedAt, killedAt + 10_000);
  t.is(decision, "restart in place");
  t.deepEqual(timeline, {
    noticed: 0.5,
    decided: 0.59,
    postmasterStarted: 2.15,
    synced: 2.4,
    redoStarted: 2.41,
    redoDone: 2.43,
    checkpointDone: 2.92,
    ready: 2.93,
  });
  t.is(
    describeCrashTimeline(timeline, 3.4),
    "Patroni noticed 0.50 s (+0.50), decided 0.59 s (+0.09), postmaster started 2.15 s (+1.56), data directory synced 2.40 s (+0.25), redo started 2.41 s (+0.01), " +
      "redo done 2.43 s (+0.02), end-of-recovery checkpoint done 2.92 s (+0.49), accepting connections 2.93 s (+0.01), first write through PgBouncer 3.40 s (+0.47)",
  );
});

test("lines outside the window are ignored; a failover decision is told apart", (t) => {
  const { timeline } = crashTimeline(log, killedAt, killedAt + 1000);
  t.is(timeline.noticed, 0.5);
  t.is(timeline.ready, null, "the start before the kill and the one after the window do not count");
  const failover = crashTimeline("2026-12-01 13:25:55,800 INFO: Primary crashed. Failing over.", killedAt, killedAt + 1000);
  t.is(failover.decision, "failover");
  t.is(describeCrashTimeline(failover.timeline, 4).split(", ")[0], "Patroni noticed (not in the log)");
});

// Where the time of a crash of PostgreSQL alone goes (postmaster killed, Patroni alive), read from
// the node's own log (Patroni's and PostgreSQL's lines share it locally), each event at the
// timestamp of its line. Patroni keeps the leader key through it, and its REST API answers
// /primary with 200 for as long as it holds the key (api.py do_GET: `patroni.ha.is_leader()`,
// whatever PostgreSQL's state), so HAProxy never marks the node DOWN: the client path waits only
// for PostgreSQL itself, then for PgBouncer's next server login.

/** Seconds from the kill to each event (first matching line after the kill); null: no such line. */
export interface CrashTimeline {
  /** Patroni's HA loop finds the postmaster gone ("Postgresql is not running"; one loop_wait at most). */
  noticed: number | null;
  /** Its decision: restart in place while it holds the key ("starting primary after failure",
   *  ha.py recover) or fail over (`primary_start_timeout` 0: "Primary crashed. Failing over."). */
  decided: number | null;
  /** The new postmaster runs (its "starting PostgreSQL", or Patroni's "postmaster pid="): Patroni
   *  has rewritten the configuration and started it through a spawned Python child that imports
   *  Patroni's modules again (postmaster.py PostmasterProcess.start, multiprocessing "spawn"). */
  postmasterStarted: number | null;
  /** The data directory is synced ("automatic recovery in progress"): after a crash PostgreSQL
   *  first fsyncs every file of it (xlog.c StartupXLOG, SyncDataDirectory; `recovery_init_sync_method`). */
  synced: number | null;
  /** Crash recovery starts replaying WAL ("redo starts at"). */
  redoStarted: number | null;
  /** Replay done ("redo done at"). */
  redoDone: number | null;
  /** The end-of-recovery checkpoint is written ("checkpoint complete" after "end-of-recovery"). */
  checkpointDone: number | null;
  /** PostgreSQL accepts connections ("database system is ready to accept connections"). */
  ready: number | null;
}

/** Which restart-in-place decision the log shows (null: neither line). */
export type CrashDecision = "restart in place" | "failover" | null;

const PATTERNS: Record<keyof CrashTimeline, RegExp> = {
  noticed: /Postgresql is not running/,
  decided: /starting primary after failure|Primary crashed\. Failing over/,
  postmasterStarted: /starting PostgreSQL \d|postmaster pid=\d+/,
  synced: /automatic recovery in progress/,
  redoStarted: /redo starts at/,
  redoDone: /redo done at/,
  checkpointDone: /checkpoint complete/,
  ready: /database system is ready to accept connections/,
};

/** The time (ms since epoch, UTC) of a log line, Patroni's "2026-01-01 10:00:00,123" or
 *  PostgreSQL's "2026-01-01 10:00:00.123 UTC"; NaN for a line without one (continuations). */
export function lineTime(line: string): number {
  const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)[.,](\d{3})/.exec(line);
  return m ? Date.parse(`${m[1]}T${m[2]}.${m[3]}Z`) : NaN;
}

/**
 * The crash's timeline from a node's log text: for each event the first line at or after
 * `killedAt` (ms since epoch) and before `until`, as seconds after the kill. The checkpoint is
 * the first one completed after replay ended (the end-of-recovery one).
 */
export function crashTimeline(log: string, killedAt: number, until: number): { timeline: CrashTimeline; decision: CrashDecision } {
  const timeline: CrashTimeline = { noticed: null, decided: null, postmasterStarted: null, synced: null, redoStarted: null, redoDone: null, checkpointDone: null, ready: null };
  let decision: CrashDecision = null;
  for (const line of log.split("\n")) {
    const at = lineTime(line);
    if (!(at >= killedAt && at < until)) continue;
    for (const event of Object.keys(PATTERNS) as (keyof CrashTimeline)[]) {
      if (timeline[event] !== null || !PATTERNS[event].test(line)) continue;
      if (event === "checkpointDone" && timeline.redoDone === null) continue;
      timeline[event] = Number(((at - killedAt) / 1000).toFixed(2));
      if (event === "decided") decision = /Failing over/.test(line) ? "failover" : "restart in place";
    }
  }
  return { timeline, decision };
}

/** One line for people: each event and the step from the previous one, e.g.
 *  "noticed +0.50 s, decided +0.59 s (+0.09), ...". */
export function describeCrashTimeline(timeline: CrashTimeline, firstWrite: number): string {
  const steps: [string, number | null][] = [
    ["Patroni noticed", timeline.noticed],
    ["decided", timeline.decided],
    ["postmaster started", timeline.postmasterStarted],
    ["data directory synced", timeline.synced],
    ["redo started", timeline.redoStarted],
    ["redo done", timeline.redoDone],
    ["end-of-recovery checkpoint done", timeline.checkpointDone],
    ["accepting connections", timeline.ready],
    ["first write through PgBouncer", firstWrite],
  ];
  let previous = 0;
  return steps
    .map(([name, at]) => {
      if (at === null) return `${name} (not in the log)`;
      const text = `${name} ${at.toFixed(2)} s (+${(at - previous).toFixed(2)})`;
      previous = at;
      return text;
    })
    .join(", ");
}

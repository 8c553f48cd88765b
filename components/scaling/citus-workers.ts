// Scaling the Citus worker groups: wait until Patroni has registered new groups, move shards onto
// them with Citus' background rebalancer; drain groups that are going, and clean pg_dist_node once
// their Patroni is stopped. One module for the Pulumi program (components/scaling/worker-scaling.ts)
// and the local runner (local/scale.ts). No Pulumi import: the dynamic provider loads this file in
// its own process, like components/schema-apply.ts.
//
// Facts it rests on (Citus 13.0 sources, Patroni 4.0 patroni/postgresql/mpp/citus.py):
// - citus_rebalance_start(rebalance_strategy, drain_only, shard_transfer_mode) schedules a background
//   job (replicating reference tables to new nodes first) and returns its id, or NULL with a NOTICE
//   when no move is needed; it refuses while another rebalance job runs. pg_dist_background_job
//   holds the job's state (scheduled, running, finished, cancelling, cancelled, failing, failed);
//   a failed task is retried with back-off while the job is "running".
// - Shard moves with logical replication need wal_level logical (Patroni sets it for Citus) and a
//   replica identity on every table moved; transfer mode "auto" errors on a table without one, so
//   such tables need "block_writes" (writes to the shards moving wait until the copy is done).
// - Patroni's coordinator leader adds each worker group's primary (and, since 4.0, its replicas as
//   secondaries) to pg_dist_node on every loop while the group has a running leader in the DCS,
//   and never removes a primary row: rows of a group that goes are ours to remove, and only once
//   its Patroni is stopped (else it adds them again).
import pg from "pg";
import { briefError, isRetryableError } from "../schema-apply.ts";
import { waitForMetadataSync } from "../citus-metadata.ts";
import { quietClient } from "../pg-client.ts";

/** How a shard is copied: with logical replication (writes continue), or with writes blocked. */
export type TransferMode = "force_logical" | "block_writes";

export interface ScalingOptions {
  /** Give up (and cancel a running job) after this long. */
  timeoutMs: number;
  /** Pause between polls (default 1 s). */
  intervalMs?: number;
  /** Progress lines (never a connection string). */
  log?: (message: string) => void;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

/** Shards of one colocation group per worker group: `{ "1": 6, "2": 6 }`. */
export interface ShardSpread {
  colocationId: number;
  /** The first of its tables by name, for people. */
  table: string;
  /** Every table of the colocation group. */
  tables: string[];
  shards: Record<string, number>;
}

/** One background rebalance job as it ended. */
export interface RebalanceJob {
  /** undefined when Citus found nothing to move. */
  jobId?: number;
  state: string;
  /** Shard groups moved (one move carries every colocated shard of the group). */
  moves: number;
  /** Reference table copies to new nodes (0 or 1 task). */
  referenceTableCopies: number;
  mode: TransferMode;
  seconds: number;
}

export interface ScaleOutResult {
  /** Worker groups Patroni had registered when the rebalance started. */
  registered: number[];
  before: ShardSpread[];
  after: ShardSpread[];
  job: RebalanceJob;
  seconds: number;
}

export interface DrainResult {
  /** The worker groups drained (none when none was registered above the kept count). */
  drained: number[];
  before: ShardSpread[];
  after: ShardSpread[];
  job?: RebalanceJob;
  /** A rebalance over the kept groups after the drain, when the drain left them uneven. */
  rebalance?: RebalanceJob;
  seconds: number;
}

export interface RemoveResult {
  /** pg_dist_node rows removed, as "groupid host:port role". */
  removed: string[];
}

/** Thrown when scaling is refused or fails; the message says what was and was not changed. */
export class ScalingError extends Error {
  override name = "ScalingError";
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = quietClient({ connectionString: url, connectionTimeoutMillis: 5000 });
  client.on("error", () => undefined); // a dropped connection surfaces on the next query
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Worker groups (> 0) with an active primary row in pg_dist_node, ascending. */
export async function registeredWorkerGroups(client: pg.Client): Promise<number[]> {
  const rows = await client.query<{ groupid: number }>(
    "SELECT DISTINCT groupid::int AS groupid FROM pg_dist_node WHERE groupid > 0 AND noderole = 'primary' AND isactive ORDER BY 1",
  );
  return rows.rows.map((r) => Number(r.groupid));
}

/** Shards per worker group of every hash-distributed colocation group (reference tables left out). */
export async function shardSpread(client: pg.Client): Promise<ShardSpread[]> {
  const rows = await client.query<{ colocationid: number; tables: string[]; groupid: number; shards: number }>(
    `WITH colocation AS (
       SELECT colocationid, array_agg(logicalrelid::regclass::text ORDER BY logicalrelid::regclass::text) AS tables,
              (array_agg(logicalrelid ORDER BY logicalrelid::regclass::text))[1] AS rel
         FROM pg_dist_partition WHERE partmethod = 'h' GROUP BY colocationid)
     SELECT c.colocationid::int AS colocationid, c.tables, pl.groupid::int AS groupid, count(*)::int AS shards
       FROM colocation c JOIN pg_dist_shard s ON s.logicalrelid = c.rel JOIN pg_dist_placement pl ON pl.shardid = s.shardid
      GROUP BY 1, 2, 3 ORDER BY 1, 3`,
  );
  const spread = new Map<number, ShardSpread>();
  for (const row of rows.rows) {
    const entry = spread.get(row.colocationid) ?? { colocationId: row.colocationid, table: row.tables[0], tables: row.tables, shards: {} };
    entry.shards[String(row.groupid)] = Number(row.shards);
    spread.set(row.colocationid, entry);
  }
  return [...spread.values()];
}

/**
 * Whether every colocation group's shards lie on `groups` alone, at most one shard apart between
 * any two of them (12 shards over 3 groups: 4/4/4; 12 over 5: 3/3/2/2/2).
 */
export function isBalanced(spread: ShardSpread[], groups: number[]): boolean {
  return spread.every((entry) => {
    const outside = Object.keys(entry.shards).filter((g) => !groups.includes(Number(g)) && entry.shards[g] > 0);
    const counts = groups.map((g) => entry.shards[String(g)] ?? 0);
    return outside.length === 0 && Math.max(...counts) - Math.min(...counts) <= 1;
  });
}

/** Distributed and reference tables without a replica identity (logical replication cannot move them). */
export async function tablesWithoutReplicaIdentity(client: pg.Client): Promise<string[]> {
  const rows = await client.query<{ rel: string }>(
    `SELECT c.oid::regclass::text AS rel
       FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid
      WHERE (p.partmethod = 'h' OR p.repmodel = 't')
        AND (c.relreplident = 'n'
         OR c.relreplident = 'd' AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
         OR c.relreplident = 'i' AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident))
      ORDER BY 1`,
  );
  return rows.rows.map((r) => r.rel);
}

/**
 * The transfer mode for a rebalance: logical replication (writes go on during the copy) when
 * every table has a replica identity; otherwise block_writes, as Citus' "auto" would refuse.
 */
export function chooseTransferMode(withoutIdentity: string[]): { mode: TransferMode; reason: string } {
  if (withoutIdentity.length === 0) return { mode: "force_logical", reason: "every distributed table has a replica identity: logical replication, writes continue" };
  return {
    mode: "block_writes",
    reason: `no replica identity on ${withoutIdentity.join(", ")}: shards are copied with writes to them blocked until each move ends`,
  };
}

const TERMINAL_JOB_STATES = new Set(["finished", "cancelled", "failed"]);

/**
 * Starts a background rebalance (`drainOnly`: move shards only off nodes marked
 * shouldhaveshards = false) and polls it until it ends or `options.timeoutMs` passes; on timeout the
 * job is cancelled. A job another session started is waited for instead of refused.
 * @throws ScalingError when the job fails, is cancelled or times out (with its tasks' messages).
 */
export async function runRebalance(client: pg.Client, drainOnly: boolean, mode: TransferMode, options: ScalingOptions): Promise<RebalanceJob> {
  const sleep = options.sleep ?? defaultSleep;
  const now = options.now ?? Date.now;
  const started = now();
  let jobId: number | undefined;
  try {
    const result = await client.query<{ job: string | null }>(
      "SELECT citus_rebalance_start(drain_only => $1, shard_transfer_mode => $2::citus.shard_transfer_mode) AS job",
      [drainOnly, mode],
    );
    jobId = result.rows[0].job === null ? undefined : Number(result.rows[0].job);
  } catch (error) {
    const running = /already running as job (\d+)/.exec(String((error as Error).message));
    if (!running) throw error;
    jobId = Number(running[1]);
    options.log?.(`rebalance: job ${jobId}, started elsewhere, is running: waiting for it`);
  }
  if (jobId === undefined) return { state: "nothing to move", moves: 0, referenceTableCopies: 0, mode, seconds: (now() - started) / 1000 };
  options.log?.(`rebalance: background job ${jobId} (${drainOnly ? "drain" : "rebalance"}, ${mode})`);
  let state = "scheduled";
  while (!TERMINAL_JOB_STATES.has(state)) {
    if (now() - started > options.timeoutMs) {
      await client.query("SELECT citus_job_cancel($1)", [jobId]).catch(() => undefined);
      throw new ScalingError(`rebalance job ${jobId} did not finish within ${Math.round(options.timeoutMs / 1000)} s (state ${state}; cancelled)${await taskErrors(client, jobId)}`);
    }
    await sleep(options.intervalMs ?? 1000);
    state = (await client.query<{ state: string }>("SELECT state::text FROM pg_dist_background_job WHERE job_id = $1", [jobId])).rows[0]?.state ?? "missing";
    if (state === "missing") throw new ScalingError(`rebalance job ${jobId} vanished from pg_dist_background_job`);
  }
  if (state !== "finished") throw new ScalingError(`rebalance job ${jobId} ended ${state}${await taskErrors(client, jobId)}`);
  const counts = await client.query<{ moves: number; reference: number }>(
    `SELECT count(*) FILTER (WHERE command ILIKE '%citus_move_shard_placement%')::int AS moves,
            count(*) FILTER (WHERE command ILIKE '%replicate_reference_tables%')::int AS reference
       FROM pg_dist_background_task WHERE job_id = $1`,
    [jobId],
  );
  return { jobId, state, moves: counts.rows[0].moves, referenceTableCopies: counts.rows[0].reference, mode, seconds: (now() - started) / 1000 };
}

async function taskErrors(client: pg.Client, jobId: number): Promise<string> {
  const rows = await client
    .query<{ message: string }>("SELECT DISTINCT message FROM pg_dist_background_task WHERE job_id = $1 AND message IS NOT NULL AND message <> '' LIMIT 3", [jobId])
    .catch(() => ({ rows: [] as { message: string }[] }));
  return rows.rows.length > 0 ? `: ${rows.rows.map((r) => r.message.split("\n")[0]).join("; ")}` : "";
}

function formatSpread(spread: ShardSpread[]): string {
  return spread.map((s) => `${s.table} ${Object.entries(s.shards).map(([g, n]) => `g${g}:${n}`).join("/")}`).join(", ") || "no distributed table";
}

/**
 * Waits until Citus has synced its metadata to every metadata worker (components/citus-metadata.ts):
 * a shard move and citus_set_node_property change metadata on every worker, which Citus refuses while
 * one is out of sync, as it is for a moment after Patroni moved a group's row to a new primary or
 * registered a new group. Within what is left of `options.timeoutMs` since `started`.
 * @throws ScalingError when the metadata is not synced in time.
 */
async function metadataSynced(url: string, options: ScalingOptions, started: number): Promise<void> {
  const now = options.now ?? Date.now;
  try {
    const seconds = await waitForMetadataSync(url, { timeoutMs: Math.max(1000, options.timeoutMs - (now() - started)), log: options.log });
    if (seconds >= 0.5) options.log?.(`Citus metadata synced to every worker after ${seconds.toFixed(1)} s`);
  } catch (error) {
    throw new ScalingError(`${briefError(error)}; nothing was moved`, { cause: error });
  }
}

/**
 * Waits until pg_dist_node lists an active primary for every worker group 1..`workerGroups`
 * (Patroni's coordinator leader registers each group once it has a primary), retrying through
 * connection errors, until `options.timeoutMs`.
 * @throws ScalingError naming the groups still missing.
 */
export async function waitForWorkerGroups(url: string, workerGroups: number, options: ScalingOptions): Promise<number[]> {
  const sleep = options.sleep ?? defaultSleep;
  const now = options.now ?? Date.now;
  const deadline = now() + options.timeoutMs;
  const wanted = Array.from({ length: workerGroups }, (_, i) => i + 1);
  let missing = wanted;
  let lastError = "";
  while (true) {
    try {
      const registered = await withClient(url, registeredWorkerGroups);
      missing = wanted.filter((g) => !registered.includes(g));
      if (missing.length === 0) return registered;
    } catch (error) {
      if (!isRetryableError(error)) throw error;
      lastError = `; last error: ${briefError(error)}`;
    }
    if (now() > deadline) {
      throw new ScalingError(
        `pg_dist_node lists no primary for worker group(s) ${missing.join(", ")} after ${Math.round(options.timeoutMs / 1000)} s: Patroni has not registered them (is each group's leader running?)${lastError}`,
      );
    }
    await sleep(options.intervalMs ?? 1000);
  }
}

/**
 * Scale-out: once Patroni has registered worker groups 1..`workerGroups` and Citus has synced its
 * metadata to every worker, moves shards onto the new ones with Citus' rebalancer until every
 * colocation group is spread evenly. Does nothing when it already is (a second run is a no-op).
 * `url`: superuser on the coordinator primary, in the Citus database.
 * @throws ScalingError when a group is not registered or the metadata not synced in time, the job
 *   fails, or the spread is still uneven afterwards.
 */
export async function scaleOut(url: string, workerGroups: number, options: ScalingOptions): Promise<ScaleOutResult> {
  const now = options.now ?? Date.now;
  const started = now();
  const registered = await waitForWorkerGroups(url, workerGroups, options);
  const groups = registered.filter((g) => g <= workerGroups);
  await metadataSynced(url, options, started);
  return withClient(url, async (client) => {
    const before = await shardSpread(client);
    if (isBalanced(before, groups)) {
      options.log?.(`rebalance: shards already even over worker groups ${groups.join(", ")} (${formatSpread(before)})`);
      return { registered, before, after: before, job: { state: "balanced", moves: 0, referenceTableCopies: 0, mode: "force_logical", seconds: 0 }, seconds: (now() - started) / 1000 };
    }
    const { mode, reason } = chooseTransferMode(await tablesWithoutReplicaIdentity(client));
    options.log?.(`rebalance: ${formatSpread(before)} over worker groups ${groups.join(", ")}; ${reason}`);
    const remaining = Math.max(1000, options.timeoutMs - (now() - started));
    const job = await runRebalance(client, false, mode, { ...options, timeoutMs: remaining });
    const after = await shardSpread(client);
    if (!isBalanced(after, groups)) throw new ScalingError(`rebalance job ${job.jobId} finished but the shards are uneven: ${formatSpread(after)}`);
    options.log?.(`rebalance: ${job.moves} shard move(s) in ${job.seconds.toFixed(1)} s: ${formatSpread(after)}`);
    return { registered, before, after, job, seconds: (now() - started) / 1000 };
  });
}

/** Placements of hash-distributed shards on worker groups above `keep` (reference tables left out). */
async function placementsAbove(client: pg.Client, keep: number): Promise<number> {
  const rows = await client.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_dist_placement pl JOIN pg_dist_shard s USING (shardid) JOIN pg_dist_partition p USING (logicalrelid)
      WHERE pl.groupid > $1 AND p.partmethod = 'h'`,
    [keep],
  );
  return rows.rows[0].n;
}

/**
 * Scale-in, first step: once Citus' metadata is synced to every worker, drains the worker groups
 * above `keep` (marks their primaries shouldhaveshards = false and moves every shard off them with a
 * drain-only rebalance), then evens out the kept groups if needed. Removes nothing. Patroni keeps
 * the drained groups registered.
 * @throws ScalingError when the drain fails or leaves a shard behind; the drained groups are then
 *   marked shouldhaveshards = true again, and nothing is removed.
 */
export async function drainWorkerGroups(url: string, keep: number, options: ScalingOptions): Promise<DrainResult> {
  const now = options.now ?? Date.now;
  const started = now();
  await metadataSynced(url, options, started);
  return withClient(url, async (client) => {
    const registered = await registeredWorkerGroups(client);
    const going = registered.filter((g) => g > keep);
    const kept = registered.filter((g) => g <= keep);
    const before = await shardSpread(client);
    const left = await placementsAbove(client, keep);
    if (going.length === 0 && left === 0) return { drained: [], before, after: before, seconds: (now() - started) / 1000 };
    if (kept.length < keep) {
      throw new ScalingError(`cannot drain worker group(s) above ${keep}: pg_dist_node lists a primary for only ${kept.length} of the ${keep} kept group(s) (${kept.join(", ") || "none"}); nothing was changed`);
    }
    const { mode, reason } = chooseTransferMode(await tablesWithoutReplicaIdentity(client));
    options.log?.(`drain: worker group(s) ${going.join(", ")}: ${formatSpread(before)}; ${reason}`);
    const mark = (value: boolean) =>
      client.query(
        "SELECT citus_set_node_property(nodename, nodeport, 'shouldhaveshards', $2) FROM pg_dist_node WHERE groupid > $1 AND noderole = 'primary'",
        [keep, value],
      );
    try {
      await mark(false);
      const job = await runRebalance(client, true, mode, { ...options, timeoutMs: Math.max(1000, options.timeoutMs - (now() - started)) });
      const remaining = await placementsAbove(client, keep);
      if (remaining > 0) throw new ScalingError(`drain job ${job.jobId} finished but ${remaining} shard placement(s) are still on worker group(s) ${going.join(", ")}`);
      // Source shards of finished moves are dropped later by Citus' maintenance daemon: now, while
      // the drained nodes still run (once stopped, nothing could drop them).
      await client.query("CALL citus_cleanup_orphaned_resources()");
      let rebalance: RebalanceJob | undefined;
      if (!isBalanced(await shardSpread(client), kept)) {
        rebalance = await runRebalance(client, false, mode, { ...options, timeoutMs: Math.max(1000, options.timeoutMs - (now() - started)) });
      }
      const after = await shardSpread(client);
      options.log?.(`drain: ${job.moves + (rebalance?.moves ?? 0)} shard move(s) in ${((now() - started) / 1000).toFixed(1)} s: ${formatSpread(after)}`);
      return { drained: going, before, after, job, rebalance, seconds: (now() - started) / 1000 };
    } catch (error) {
      await mark(true).catch(() => undefined);
      throw new ScalingError(
        `draining worker group(s) ${going.join(", ")} failed, so nothing was removed (they take shards again): ${briefError(error)}`,
        { cause: error },
      );
    }
  });
}

/**
 * Scale-in, last step: removes every pg_dist_node row of the worker groups above `keep`: ends a
 * transaction Patroni left open on them, disables their primaries, then removes secondaries and
 * primaries. Call it only once those groups' Patroni and PostgreSQL are stopped: a running Patroni
 * adds its group again.
 * @throws ScalingError, removing nothing, when a shard placement is still on such a group.
 */
export async function removeWorkerGroups(url: string, keep: number, options: Pick<ScalingOptions, "log">): Promise<RemoveResult> {
  return withClient(url, async (client) => {
    const left = await placementsAbove(client, keep);
    if (left > 0) throw new ScalingError(`${left} shard placement(s) are still on worker groups above ${keep}: drain them first; nothing was removed`);
    const rows = await client.query<{ nodeid: number; groupid: number; nodename: string; nodeport: number; noderole: string }>(
      "SELECT nodeid::int AS nodeid, groupid::int AS groupid, nodename, nodeport, noderole::text FROM pg_dist_node WHERE groupid > $1 ORDER BY groupid, noderole = 'primary', nodeid",
      [keep],
    );
    // A worker primary that stops tells the coordinator's Patroni "before_demote": it opens a
    // transaction renaming the row to '<host>-demoted' and waits for the group's next primary, which
    // never comes for a group that goes; the transaction then stays open (and holds the row's lock)
    // until some other event reaches that Patroni. End it: Patroni recovers on its next query.
    const stuck = await client.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'
          AND substring(query, '^SELECT pg_catalog\\.citus_update_node\\((\\d+),')::int = ANY($1::int[])`,
      [rows.rows.map((r) => r.nodeid)],
    );
    for (const { pid } of stuck.rows) {
      await client.query("SELECT pg_terminate_backend($1::int)", [pid]);
      options.log?.(`pg_dist_node: ended Patroni's open "before_demote" transaction (backend ${pid}) on a removed group's row`);
    }
    // Never wait forever on a lock: fail with the reason instead.
    await client.query("SET lock_timeout = '60s'");
    // Inactive first: removing an active primary (or any row while it is active) sends the change to
    // every active node with metadata, the stopped one included, and fails on its refused connection.
    await client.query(
      "SELECT citus_disable_node(nodename, nodeport, synchronous => true) FROM pg_dist_node WHERE groupid > $1 AND noderole = 'primary' AND isactive",
      [keep],
    );
    const removed: string[] = [];
    for (const row of rows.rows) {
      await client.query("SELECT citus_remove_node($1, $2)", [row.nodename, row.nodeport]);
      removed.push(`${row.groupid} ${row.nodename}:${row.nodeport} ${row.noderole}`);
    }
    if (removed.length > 0) options.log?.(`pg_dist_node: removed ${removed.join(", ")}`);
    return { removed };
  });
}

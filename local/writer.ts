// A continuous writer: one client inserting one row per transaction, reconnecting after errors,
// recording which writes were acknowledged and when. The failover tests and the drill both use it.
import pg from "pg";
import { sleep } from "./processes.ts";
import { quietClient } from "../components/pg-client.ts";
import { isMetadataOutOfSync, waitForMetadataSync } from "../components/citus-metadata.ts";

export interface WriterResult {
  acknowledged: number[];
  errors: number;
  /** Acknowledgement times (ms since epoch), index-aligned with `acknowledged`. */
  acknowledgedAt: number[];
  /** Times (ms since epoch) of failed writes or connection attempts. */
  failedAt: number[];
  /** The first few errors' messages, for people. */
  errorMessages: string[];
  /** The first failures (at most FAILURE_LOG) with their times (ms since epoch): where an outage's time went. */
  failures: { at: number; message: string }[];
}

/** How many failures `WriterResult.failures` keeps. */
const FAILURE_LOG = 40;

export interface WriterTarget {
  /** Returns the connection string to use for the next connection (may change after a failover). */
  connectionString(): Promise<string>;
  table: string;
  /** The distribution column's value of every row written: it decides the shard, so the worker. */
  bucket?: string;
}

/** A gap between acknowledgements longer than this (ms) is an outage, not a slow write. */
const STALL_MS = 500;

/** The bucket value of rows written without one. */
export const DEFAULT_BUCKET = "w";

export class ContinuousWriter {
  private stopped = false;
  private readonly result: WriterResult = { acknowledged: [], errors: 0, acknowledgedAt: [], failedAt: [], errorMessages: [], failures: [] };
  private running?: Promise<void>;
  private sequence = 0;

  constructor(private readonly target: WriterTarget) {}

  /**
   * Creates (or empties) the table the writer inserts into, as a superuser on the coordinator:
   * distributed on `bucket` where Citus is installed, so each bucket's rows live on one worker group.
   * `grantTo` (a role) may then write it, e.g. the application role through PgBouncer.
   * `local`: a plain table of the coordinator group, whose commits wait on that group's own
   * synchronous standbys (a distributed row commits on its worker group alone).
   * Right after a worker group's primary changed, Citus refuses the DDL until it has synced its
   * metadata again: then this waits for that (at most 90 s) and tries once more.
   */
  static async createTable(connectionString: string, table: string, grantTo?: string, options: { local?: boolean } = {}): Promise<void> {
    try {
      await ContinuousWriter.createTableOnce(connectionString, table, grantTo, options);
    } catch (error) {
      if (!isMetadataOutOfSync(error)) throw error;
      await waitForMetadataSync(connectionString, { timeoutMs: 90_000 });
      await ContinuousWriter.createTableOnce(connectionString, table, grantTo, options);
    }
  }

  private static async createTableOnce(connectionString: string, table: string, grantTo: string | undefined, options: { local?: boolean }): Promise<void> {
    const client = quietClient({ connectionString, connectionTimeoutMillis: 5000 });
    await client.connect();
    try {
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${table} (bucket text NOT NULL DEFAULT '${DEFAULT_BUCKET}', seq integer NOT NULL, written_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (bucket, seq))`,
      );
      const citus = await client.query("SELECT 1 FROM pg_extension WHERE extname = 'citus'");
      if (citus.rowCount === 1 && !options.local) {
        await client.query(
          `SELECT create_distributed_table($1, 'bucket') WHERE NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = $1::regclass)`,
          [table],
        );
      }
      await client.query(`TRUNCATE ${table}`);
      if (grantTo) await client.query(`GRANT SELECT, INSERT ON ${table} TO ${grantTo}`);
    } finally {
      await client.end();
    }
  }

  /**
   * A bucket value whose rows the Citus shard placement puts on worker group `group` (1..N):
   * tries b0, b1, ... and asks Citus where each would go. Throws when none of 1000 lands there.
   */
  static async bucketOnGroup(connectionString: string, table: string, group: number): Promise<string> {
    const client = quietClient({ connectionString, connectionTimeoutMillis: 5000 });
    await client.connect();
    try {
      const result = await client.query<{ bucket: string }>(
        `SELECT 'b' || i AS bucket FROM generate_series(0, 999) AS i
          WHERE (SELECT groupid FROM pg_dist_placement WHERE shardid = get_shard_id_for_distribution_column($1, 'b' || i)) = $2
          ORDER BY i LIMIT 1`,
        [table, group],
      );
      if (result.rowCount !== 1) throw new Error(`no bucket of ${table} hashes to a shard on worker group ${group}`);
      return result.rows[0].bucket;
    } finally {
      await client.end();
    }
  }

  start(): void {
    this.running = this.loop();
  }

  /**
   * The end of the outage that began at `failureAt`: the first acknowledged write after the first
   * failed one. (Writes already in flight when a primary is killed may still be acknowledged.) An
   * outage short enough that no write failed (the client waited through it) ends at the first
   * acknowledgement after a stall of more than STALL_MS; undefined while neither has happened.
   */
  recoveredAfter(failureAt: number): number | undefined {
    const firstFailure = this.result.failedAt.find((t) => t >= failureAt);
    const acks = this.result.acknowledgedAt;
    if (firstFailure !== undefined) return acks.find((t) => t > firstFailure);
    const index = acks.findIndex((t, i) => t > failureAt && i > 0 && t - Math.max(acks[i - 1], failureAt) > STALL_MS);
    return index === -1 ? undefined : acks[index];
  }

  /**
   * The first acknowledged write after the first failed one at or after `since` (ms since epoch),
   * for a kill, which always fails the write in flight: unlike recoveredAfter, a write that was
   * merely slow (a busy machine) and raced the kill is never taken for the end of the outage.
   */
  recoveredAfterFailure(since: number): number | undefined {
    const firstFailure = this.result.failedAt.find((t) => t >= since);
    return firstFailure === undefined ? undefined : this.result.acknowledgedAt.find((t) => t > firstFailure);
  }

  get acknowledgedCount(): number {
    return this.result.acknowledged.length;
  }

  async stop(): Promise<WriterResult> {
    this.stopped = true;
    await this.running;
    return this.result;
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      let client: pg.Client | undefined;
      try {
        client = quietClient({
          connectionString: await this.target.connectionString(),
          connectionTimeoutMillis: 2000,
          // Long enough to wait through a planned switchover's pause; a dead server fails the
          // connection (refused, or closed by HAProxy) long before.
          query_timeout: 10000,
        });
        await client.connect();
        while (!this.stopped) {
          const seq = ++this.sequence;
          await client.query(`INSERT INTO ${this.target.table} (bucket, seq) VALUES ($1, $2)`, [this.target.bucket ?? DEFAULT_BUCKET, seq]);
          // Only now is the write acknowledged: the commit returned to the client.
          this.result.acknowledged.push(seq);
          this.result.acknowledgedAt.push(Date.now());
        }
      } catch (error) {
        this.result.errors++;
        if (this.result.errorMessages.length < 5) this.result.errorMessages.push((error as Error).message);
        this.result.failedAt.push(Date.now());
        if (this.result.failures.length < FAILURE_LOG) this.result.failures.push({ at: Date.now(), message: (error as Error).message });
        await sleep(100);
      } finally {
        await client?.end().catch(() => undefined);
      }
    }
  }
}

/** Acknowledged writes of `bucket` missing from the table afterwards (must be none). */
export async function missingWrites(connectionString: string, table: string, acknowledged: number[], bucket = DEFAULT_BUCKET): Promise<number[]> {
  const client = quietClient({ connectionString, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    const rows = await client.query(`SELECT seq FROM ${table} WHERE bucket = $1`, [bucket]);
    const present = new Set(rows.rows.map((r) => r.seq as number));
    return acknowledged.filter((seq) => !present.has(seq));
  } finally {
    await client.end();
  }
}

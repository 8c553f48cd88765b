// A continuous writer: one client inserting one row per transaction, reconnecting after errors,
// recording which writes were acknowledged and when. The failover tests and the drill both use it.
import pg from "pg";
import { sleep } from "./processes.ts";

export interface WriterResult {
  acknowledged: number[];
  errors: number;
  /** Acknowledgement times (ms since epoch), index-aligned with `acknowledged`. */
  acknowledgedAt: number[];
  /** Times (ms since epoch) of failed writes or connection attempts. */
  failedAt: number[];
}

export interface WriterTarget {
  /** Returns the connection string to use for the next connection (may change after a failover). */
  connectionString(): Promise<string>;
  table: string;
}

export class ContinuousWriter {
  private stopped = false;
  private readonly result: WriterResult = { acknowledged: [], errors: 0, acknowledgedAt: [], failedAt: [] };
  private running?: Promise<void>;
  private sequence = 0;

  constructor(private readonly target: WriterTarget) {}

  static async createTable(connectionString: string, table: string): Promise<void> {
    const client = new pg.Client({ connectionString, connectionTimeoutMillis: 5000 });
    await client.connect();
    try {
      await client.query(`CREATE TABLE IF NOT EXISTS ${table} (seq integer PRIMARY KEY, written_at timestamptz NOT NULL DEFAULT now())`);
      await client.query(`TRUNCATE ${table}`);
    } finally {
      await client.end();
    }
  }

  start(): void {
    this.running = this.loop();
  }

  /**
   * The end of the outage that began at `failureAt`: the first acknowledged write after the first
   * failed one. (Writes already in flight when a primary is killed may still be acknowledged.)
   */
  recoveredAfter(failureAt: number): number | undefined {
    const firstFailure = this.result.failedAt.find((t) => t >= failureAt);
    if (firstFailure === undefined) return undefined;
    return this.result.acknowledgedAt.find((t) => t > firstFailure);
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
        client = new pg.Client({
          connectionString: await this.target.connectionString(),
          connectionTimeoutMillis: 2000,
          query_timeout: 3000,
        });
        client.on("error", () => undefined); // a dropped connection surfaces on the next query
        await client.connect();
        while (!this.stopped) {
          const seq = ++this.sequence;
          await client.query(`INSERT INTO ${this.target.table} (seq) VALUES ($1)`, [seq]);
          // Only now is the write acknowledged: the commit returned to the client.
          this.result.acknowledged.push(seq);
          this.result.acknowledgedAt.push(Date.now());
        }
      } catch {
        this.result.errors++;
        this.result.failedAt.push(Date.now());
        await sleep(100);
      } finally {
        await client?.end().catch(() => undefined);
      }
    }
  }
}

/** Acknowledged writes missing from the table afterwards (must be none). */
export async function missingWrites(connectionString: string, table: string, acknowledged: number[]): Promise<number[]> {
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    const rows = await client.query(`SELECT seq FROM ${table}`);
    const present = new Set(rows.rows.map((r) => r.seq as number));
    return acknowledged.filter((seq) => !present.has(seq));
  } finally {
    await client.end();
  }
}

// Small probes the docker test polls: waiting, one-shot queries, and what Citus's metadata says.
import { createServer } from "node:net";
import pg from "pg";
import { quietClient } from "../../components/pg-client.ts";

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` every 250 ms until it returns a value (errors count as "not yet"); throws after `timeoutMs`. */
export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    const value = await probe().catch((e: Error) => {
      last = e.message;
      return undefined;
    });
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s${last ? ` (last error: ${last})` : ""}`);
    await sleep(250);
  }
}

/** One statement on a connection of its own. `timeoutMs` bounds the statement (default 10 s). */
export async function query(url: string, sql: string, params: unknown[] = [], timeoutMs = 10_000): Promise<pg.QueryResult> {
  const client = quietClient({ connectionString: url, connectionTimeoutMillis: 5000, query_timeout: timeoutMs });
  client.on("error", () => undefined);
  await client.connect();
  try {
    return await client.query(sql, params);
  } finally {
    await client.end().catch(() => undefined);
  }
}

export interface DistNode {
  groupid: number;
  nodename: string;
  noderole: string;
  isactive: boolean;
}

/** The primaries Citus routes to, one per group, from the coordinator's pg_dist_node. */
export async function distPrimaries(adminUrl: string): Promise<Map<number, string>> {
  const rows = (await query(adminUrl, "SELECT groupid, nodename, noderole, isactive FROM pg_dist_node WHERE noderole = 'primary' ORDER BY groupid")).rows as DistNode[];
  return new Map(rows.filter((r) => r.isactive).map((r) => [r.groupid, r.nodename]));
}

/** Shard placements per Citus group of a distributed table: groupid -> count. */
export async function placementsPerGroup(adminUrl: string, table: string): Promise<Map<number, number>> {
  const rows = (
    await query(
      adminUrl,
      `SELECT p.groupid, count(*)::int AS shards FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid)
       WHERE s.logicalrelid = $1::regclass GROUP BY p.groupid ORDER BY p.groupid`,
      [table],
    )
  ).rows as { groupid: number; shards: number }[];
  return new Map(rows.map((r) => [r.groupid, r.shards]));
}

/**
 * The ports of `ports` (name -> port) that something on this host already listens on: Docker
 * publishes on 0.0.0.0, so any listener on the port, whatever its address, makes the container fail.
 */
export async function takenPorts(ports: Record<string, number>): Promise<string[]> {
  const taken: string[] = [];
  for (const [name, port] of Object.entries(ports)) {
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once("error", () => resolve(false));
      server.listen(port, "0.0.0.0", () => server.close(() => resolve(true)));
    });
    if (!free) taken.push(`${name} ${port}`);
  }
  return taken;
}

// Citus refuses DDL and node changes while a metadata worker is "out of sync". Patroni's
// citus_update_node after every change of a worker group's primary marks every metadata worker so,
// and the coordinator's maintenance daemon syncs them again in the background (retrying every
// citus.metadata_sync_retry_interval, 5 s, while a sync fails). Steps that run DDL wait for that
// instead of failing. No Pulumi import: providers, the local runner and the tests share it.
import { errorChain } from "./error-chain.ts";
import { quietClient } from "./pg-client.ts";

/**
 * Whether `error` (or a cause) is Citus' refusal of DDL while a metadata worker is out of sync:
 * SQLSTATE 55000 "<host>:<port> is a metadata node, but is out of sync" (Citus 11+,
 * worker_transaction.c ErrorIfAnyMetadataNodeOutOfSync). It passes once the metadata is synced.
 */
export function isMetadataOutOfSync(error: unknown): boolean {
  return errorChain(error).some((e) => {
    const { code, message } = e as { code?: unknown; message?: unknown };
    return code === "55000" && typeof message === "string" && /is a metadata node, but is out of sync/.test(message);
  });
}

/**
 * The metadata workers Citus has not synced yet, as "host:port" (empty when all are synced or
 * Citus is not installed). `url`: a superuser's URL of the coordinator's primary.
 * @throws the connection's or query's error.
 */
export async function unsyncedMetadataNodes(url: string): Promise<string[]> {
  const client = quietClient({ connectionString: url, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    const citus = await client.query("SELECT 1 FROM pg_extension WHERE extname = 'citus'");
    if (citus.rowCount !== 1) return [];
    const result = await client.query<{ node: string }>(
      "SELECT nodename || ':' || nodeport AS node FROM pg_dist_node WHERE hasmetadata AND isactive AND noderole = 'primary' AND NOT metadatasynced ORDER BY nodeid",
    );
    return result.rows.map((r) => r.node);
  } finally {
    await client.end();
  }
}

export interface MetadataSyncWait {
  /** Give up after this long, ms. */
  timeoutMs: number;
  /** Between checks, ms (default 500). */
  intervalMs?: number;
  /** Progress lines (never the URL). */
  log?: (message: string) => void;
}

/**
 * Waits until every metadata worker is synced (unsyncedMetadataNodes is empty). Connection
 * errors count as "not yet" (a coordinator mid-failover). Returns the seconds waited.
 * @throws Error naming the nodes still out of sync (or the last error) after `timeoutMs`.
 */
export async function waitForMetadataSync(url: string, options: MetadataSyncWait): Promise<number> {
  const started = Date.now();
  const interval = options.intervalMs ?? 500;
  let last = "";
  let logged = 0;
  for (;;) {
    const pending = await unsyncedMetadataNodes(url).catch((error: Error) => `error: ${error.message.split("\n")[0]}`);
    if (Array.isArray(pending) && pending.length === 0) return (Date.now() - started) / 1000;
    last = Array.isArray(pending) ? `out of sync: ${pending.join(", ")}` : pending;
    const waited = Date.now() - started;
    if (waited + interval > options.timeoutMs) {
      throw new Error(`Citus metadata not synced to every worker within ${Math.round(options.timeoutMs / 1000)} s (${last})`);
    }
    if (waited - logged >= 5000) {
      logged = waited;
      options.log?.(`waiting for Citus to sync its metadata (${last}; ${(waited / 1000).toFixed(0)} s)`);
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

// PgBouncer's admin console (the `pgbouncer` database): PAUSE, RESUME, RECONNECT, RELOAD. Used by the
// Schema step, the rollout's switchover gate and the local runner; no Pulumi import.
import { pgClientConfig, quietClient } from "./pg-client.ts";

/**
 * Runs one admin console command as `url`'s user (who must be in PgBouncer's admin_users). The
 * console speaks the simple protocol only: no parameters. Throws what the connection or the command
 * throws; connects within `connectTimeoutMs` (ms); `ca`: the cluster CA (PEM) when PgBouncer speaks TLS; `serverName`: the name its certificate carries when `url` dials an address it does not name.
 */
export async function pgbouncerCommand(url: string, command: string, connectTimeoutMs = 5000, ca?: string, serverName?: string): Promise<void> {
  const client = quietClient(pgClientConfig(url, ca, { connectionTimeoutMillis: connectTimeoutMs }, serverName));
  client.on("error", () => undefined);
  await client.connect();
  try {
    await client.query(command);
  } finally {
    await client.end().catch(() => undefined);
  }
}

// Step 3 of a rotation: one login through PgBouncer with the new application password per pool.
// No Pulumi import (the dynamic provider loads it).
import { pgClientConfig, quietClient } from "../pg-client.ts";
import { briefError } from "../schema-apply.ts";

/**
 * Logs in once at each of `urls` (the application role through PgBouncer, one URL per PgBouncer
 * database: the transaction pool and the session pool) and runs `SELECT 1`, retrying each for up to
 * `timeoutMs` (ms).
 *
 * Why: with auth_query, PgBouncer logs in to the server with the SCRAM keys of the last client login
 * to that pool (PgBouncer 1.24 client.c: a successful SCRAM exchange copies ClientKey/ServerKey into
 * the pool's credentials; scram.c calculate_client_proof uses them). After ALTER ROLE those are the
 * old password's until a client logs in with the new one: a new server connection in that window
 * would be refused (pooled ones are unaffected). This login closes the window at once. It also
 * proves PgBouncer accepts the new password. `ca`: the cluster CA (PEM) when PgBouncer speaks TLS;
 * `serverName`: the name its certificate carries when the URL dials an address it does not name.
 */
export async function refreshPoolerLogins(urls: string[], options: { ca?: string; serverName?: string; timeoutMs?: number; intervalMs?: number } = {}): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  for (const url of urls) {
    for (let attempt = 1; ; attempt++) {
      const client = quietClient(pgClientConfig(url, options.ca, { connectionTimeoutMillis: 5000 }, options.serverName));
      client.on("error", () => undefined);
      try {
        await client.connect();
        await client.query("SELECT 1");
        break;
      } catch (error) {
        if (Date.now() + (options.intervalMs ?? 1000) > deadline) {
          throw new Error(`rotation: the new application password was not accepted through PgBouncer at ${new URL(url).host}/${new URL(url).pathname.slice(1)} (attempt ${attempt}): ${briefError(error)}`, { cause: error });
        }
        await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 1000));
      } finally {
        await client.end().catch(() => undefined);
      }
    }
  }
}

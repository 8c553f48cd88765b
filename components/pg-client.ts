// node-postgres client settings for a URL and, with TLS, the cluster CA held in memory (the Pulumi
// dynamic providers have no file to point `sslrootcert` at). No Pulumi import.
import type pg from "pg";

/**
 * `{ connectionString, ssl }` for pg.Client/pg.Pool. With `ca` (PEM) the server's certificate must
 * chain to it and name the host dialled (Node's checkServerIdentity: DNS or IP subjectAltName), as
 * libpq's sslmode=verify-full does. A URL's own sslmode/sslrootcert parameters take precedence
 * (node-postgres merges the parsed URL over these settings).
 */
export function pgClientConfig(url: string, ca?: string, extra: Omit<pg.ClientConfig, "connectionString" | "ssl"> = {}): pg.ClientConfig {
  return { ...extra, connectionString: url, ...(ca ? { ssl: { ca, rejectUnauthorized: true } } : {}) };
}

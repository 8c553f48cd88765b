// node-postgres client settings for a URL and, with TLS, the cluster CA held in memory (the Pulumi
// dynamic providers have no file to point `sslrootcert` at). No Pulumi import.
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";

/**
 * `{ connectionString, ssl }` for pg.Client/pg.Pool. With `ca` (PEM) the server's certificate must
 * chain to it and name the host dialled (Node's checkServerIdentity: DNS or IP subjectAltName), as
 * libpq's sslmode=verify-full does. A URL's own sslmode/sslrootcert parameters take precedence
 * (node-postgres merges the parsed URL over these settings). `serverName`: the name the certificate
 * must carry when the URL dials an address it does not name (a router pod's IP on Kubernetes).
 */
export function pgClientConfig(url: string, ca?: string, extra: Omit<pg.ClientConfig, "connectionString" | "ssl"> = {}, serverName?: string): pg.ClientConfig {
  return { ...extra, connectionString: url, ...(ca ? { ssl: { ca, rejectUnauthorized: true, ...(serverName ? { servername: serverName } : {}) } } : {}) };
}

/**
 * `url` with `sslmode=verify-full` and `sslrootcert` pointing at a file holding `ca` (PEM), for code
 * that takes a URL only (the migrations, the benchmark suite, the scaling and rotation steps): the
 * server must chain to `ca` and name the host dialled, as libpq's verify-full. The file lives in a
 * directory of this process's own (mkdtemp, mode 0700, removed at exit), so no other user can
 * replace it. Without `ca` the URL is returned as it is.
 * @throws Error when `url` is not a URL.
 */
export function verifyFullUrl(url: string, ca?: string): string {
  if (!ca) return url;
  const parsed = new URL(url);
  parsed.searchParams.set("sslmode", "verify-full");
  parsed.searchParams.set("sslrootcert", caFile(ca));
  return parsed.toString();
}

let privateDir: string | undefined;
const written = new Map<string, string>();

/** A file holding `ca` in this process's private directory, written once per CA. */
export function caFile(ca: string): string {
  const known = written.get(ca);
  if (known) return known;
  if (!privateDir) {
    const dir = mkdtempSync(join(tmpdir(), "dpc-ca-"));
    privateDir = dir;
    process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  }
  const file = join(privateDir, `${createHash("sha256").update(ca).digest("hex").slice(0, 16)}.crt`);
  writeFileSync(file, ca, { mode: 0o600 });
  written.set(ca, file);
  return file;
}

/**
 * A pg.Client that does not crash the process when the server ends the connection while no query
 * runs: a demoted or stopping primary terminates every session ("terminating connection due to
 * administrator command", 57P01), also one between its last query and `end()`, and node-postgres
 * emits that as an 'error' event, which without a listener is an uncaught exception (seen in a
 * switchover test). A later query on the client still fails with the error.
 */
export function quietClient(config: string | pg.ClientConfig): pg.Client {
  const client = new pg.Client(config);
  client.on("error", () => undefined);
  return client;
}

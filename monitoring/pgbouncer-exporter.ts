// A small PgBouncer exporter for the local cluster: Debian's prometheus-pgbouncer-exporter (1.7) fails
// against the PgBouncer it ships (1.18: SHOW STATS has no `total_requests` column any more), and the
// exporter the Docker platform runs (prometheus-community/pgbouncer_exporter) has no Debian package.
// This one emits the metrics the alerts and panels use, by that exporter's names and labels, so the
// same rules serve both. Run: tsx monitoring/pgbouncer-exporter.ts --web.listen-address=HOST:PORT
// --connection-file=FILE, FILE (mode 0600) holding the URL of PgBouncer's admin console.
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import pg from "pg";
import { Gauge, Registry } from "prom-client";

type Row = Record<string, string | number | null>;

interface AdminConsoleRows {
  pools: Row[];
  databases: Row[];
  lists: Row[];
  config: Row[];
}

/** SHOW POOLS / DATABASES / LISTS / CONFIG through the admin console (simple query protocol). */
export async function readAdminConsole(connectionString: string): Promise<AdminConsoleRows> {
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: 2000, query_timeout: 2000 });
  await client.connect();
  try {
    const show = async (what: string) => (await client.query(`SHOW ${what}`)).rows as Row[];
    return { pools: await show("POOLS"), databases: await show("DATABASES"), lists: await show("LISTS"), config: await show("CONFIG") };
  } finally {
    await client.end().catch(() => undefined);
  }
}

const POOL_COLUMNS = {
  cl_active: "client_active_connections",
  cl_waiting: "client_waiting_connections",
  sv_active: "server_active_connections",
  sv_idle: "server_idle_connections",
  sv_used: "server_used_connections",
  maxwait: "client_maxwait_seconds",
} as const;
const DATABASE_COLUMNS = { pool_size: "pool_size", max_connections: "max_connections", current_connections: "current_connections" } as const;
const LISTS = { used_clients: "used_clients", free_clients: "free_clients", used_servers: "used_servers", free_servers: "free_servers" } as const;

/** A registry, and `refresh`, which fills its gauges from one admin-console reading (once per scrape). */
export function pgbouncerMetrics(read: () => Promise<AdminConsoleRows>): { registry: Registry; refresh: () => Promise<void> } {
  const registry = new Registry();
  const gauge = (name: string, help: string, labelNames: string[] = []) =>
    new Gauge({ name, help, labelNames, registers: [registry] });
  const up = gauge("pgbouncer_up", "1 when the last scrape of PgBouncer's admin console succeeded");
  const pools = Object.fromEntries(
    Object.entries(POOL_COLUMNS).map(([column, name]) => [column, gauge(`pgbouncer_pools_${name}`, `SHOW POOLS ${column}`, ["database", "user"])]),
  );
  const databases = Object.fromEntries(
    Object.entries(DATABASE_COLUMNS).map(([column, name]) => [
      column,
      gauge(`pgbouncer_databases_${name}`, `SHOW DATABASES ${column}`, ["name", "host", "port", "database", "force_user", "pool_mode"]),
    ]),
  );
  const lists = Object.fromEntries(Object.entries(LISTS).map(([list, name]) => [list, gauge(`pgbouncer_${name}`, `SHOW LISTS ${list}`)]));
  const maxClients = gauge("pgbouncer_config_max_client_connections", "max_client_conn");

  const refresh = async () => {
    registry.resetMetrics();
    try {
      const rows = await read();
      for (const row of rows.pools) {
        for (const column of Object.keys(POOL_COLUMNS)) {
          pools[column].set({ database: String(row.database), user: String(row.user) }, Number(row[column] ?? 0));
        }
      }
      for (const row of rows.databases) {
        const labels = {
          name: String(row.name), host: String(row.host ?? ""), port: String(row.port ?? ""), database: String(row.database),
          force_user: String(row.force_user ?? ""), pool_mode: String(row.pool_mode ?? ""),
        };
        for (const column of Object.keys(DATABASE_COLUMNS)) databases[column].set(labels, Number(row[column] ?? 0));
      }
      for (const row of rows.lists) {
        const list = String(row.list) as keyof typeof LISTS;
        if (list in LISTS) lists[list].set(Number(row.items));
      }
      const maxClientConn = rows.config.find((row) => row.key === "max_client_conn");
      if (maxClientConn) maxClients.set(Number(maxClientConn.value));
      up.set(1);
    } catch {
      up.set(0);
    }
  };
  return { registry, refresh };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { "web.listen-address": { type: "string", default: "127.0.0.1:9127" }, "connection-file": { type: "string" } },
  });
  if (!values["connection-file"]) throw new Error("--connection-file is required: a file holding the URL of PgBouncer's admin console");
  const connectionString = readFileSync(values["connection-file"], "utf8").trim();
  const [host, port] = values["web.listen-address"]!.split(":");
  const { registry, refresh } = pgbouncerMetrics(() => readAdminConsole(connectionString));
  createServer(async (request, response) => {
    if (request.url !== "/metrics") {
      response.writeHead(200, { "content-type": "text/plain" }).end("pgbouncer exporter: see /metrics\n");
      return;
    }
    await refresh();
    response.writeHead(200, { "content-type": registry.contentType }).end(await registry.metrics());
  }).listen(Number(port), host);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error) => {
    console.error((error as Error).message);
    process.exit(1);
  });
}

// The single-node baseline's files (issue 16): a plain PostgreSQL node with the cluster's rendered
// parameters minus Citus, for the benchmark to run the same data and queries on. Pure.
import { join } from "node:path";
import { postgresParameters } from "../components/render/index.ts";
import type { PostgresLayout } from "../components/render/types.ts";
import type { ClusterConfig } from "../components/spec.ts";

/** Where one baseline node keeps its files: everything under `dir`. */
export interface BaselinePaths {
  dir: string;
  dataDir: string;
  /** postgresql.conf outside the data directory, so a restart rewrites nothing initdb made. */
  configFile: string;
  hbaFile: string;
  logFile: string;
  /** Passwords of the superuser and the application role (root only, 0600). */
  secretsFile: string;
  /** A pgpass line for the application role, for people and tools on this machine (root, 0600). */
  pgpassFile: string;
}

export function baselinePaths(dir: string): BaselinePaths {
  return {
    dir,
    dataDir: join(dir, "data"),
    configFile: join(dir, "postgresql.conf"),
    hbaFile: join(dir, "pg_hba.conf"),
    logFile: join(dir, "postgres.log"),
    secretsFile: join(dir, "secrets.json"),
    pgpassFile: join(dir, "pgpass"),
  };
}

/** The PostgreSQL layout the cluster's parameter renderer takes (only the socket directory matters here). */
export function baselineLayout(config: ClusterConfig, paths: BaselinePaths): PostgresLayout {
  return {
    dataDir: paths.dataDir,
    binDir: `/usr/lib/postgresql/${config.postgresMajor}/bin`,
    socketDir: paths.dir,
    pgpassFile: paths.pgpassFile,
    // The baseline has no Patroni: no post-bootstrap script or callback; the role is made by BaselineNode.up.
    postBootstrapScript: join(paths.dir, "no-post-bootstrap"),
    appPasswordFile: join(paths.dir, "no-app-password-file"),
    promoteCallbackScript: join(paths.dir, "no-promote-callback"),
    timelineGuardScript: join(paths.dir, "no-timeline-guard"),
  };
}

/**
 * The node's parameters: exactly what every cluster node renders (`postgresParameters`: memory,
 * connections, WAL), without the `citus.*` settings and without Citus preloaded, plus its own
 * address and files. Search settings (ef_search, iterative scan) are not here: the migrations set
 * them with ALTER DATABASE, as on the cluster.
 */
export function baselineParameters(config: ClusterConfig, paths: BaselinePaths, address: string, port: number): Record<string, string | number | boolean> {
  const cluster = postgresParameters(config, baselineLayout(config, paths));
  const plain = Object.fromEntries(Object.entries(cluster).filter(([name]) => !name.startsWith("citus.")));
  return { ...plain, listen_addresses: address, port, hba_file: paths.hbaFile, ident_file: join(paths.dataDir, "pg_ident.conf") };
}

const confValue = (value: string | number | boolean) =>
  typeof value === "number" ? String(value) : typeof value === "boolean" ? (value ? "on" : "off") : `'${value.replace(/'/g, "''")}'`;

/** postgresql.conf text: one `name = value` a line. */
export function renderBaselineConf(parameters: Record<string, string | number | boolean>): string {
  const lines = Object.entries(parameters).map(([name, value]) => `${name} = ${confValue(value)}`);
  return `# Rendered by local/baseline-config.ts: the cluster's parameters without Citus.\n${lines.join("\n")}\n`;
}

/**
 * pg_hba.conf: as on the cluster's nodes (peer on the socket, scram-sha-256 from the loopback
 * network the local cluster uses), and nothing else.
 */
export function renderBaselineHba(network = "127.0.0.0/8"): string {
  return ["local all all peer", `host all all ${network} scram-sha-256`, ""].join("\n");
}

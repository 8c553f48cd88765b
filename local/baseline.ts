// The single-node baseline (issue 16): one plain PostgreSQL node (no Citus, the cluster's settings,
// pgvector, the same schema and ALTER DATABASE search settings through the same migrations), started
// by the local runner on its own loopback address for the benchmark to compare with.
import { randomBytes } from "node:crypto";
import { chownSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import pg from "pg";
import { PORTS, ROLES } from "../components/render/index.ts";
import type { ClusterConfig } from "../components/spec.ts";
import { applyMigrations, type ApplyResult } from "../sql/apply.ts";
import { baselineLayout, baselineParameters, baselinePaths, renderBaselineConf, renderBaselineHba, type BaselinePaths } from "./baseline-config.ts";
import { baselineAddress, localClusterConfig } from "./layout.ts";
import { detectPostgresMajor, isAlive, pollUntil, portInUse, postgresIds, processesUnder, runAsPostgres, signal, startAsPostgres, stopEverythingUnder, tail } from "./processes.ts";
import { quietClient } from "../components/pg-client.ts";

export interface BaselineOptions {
  /** Pulumi.<stack>.yaml whose settings the node takes (memory, connections, HNSW, database). */
  stackFile: string;
  /** Directory for the node's data, config, log and passwords. */
  dir: string;
  log?: (line: string) => void;
}

interface BaselineSecrets {
  superuser: string;
  app: string;
}

/** A failure with one clear cause (the CLI prints the message). */
export class BaselineError extends Error {
  override name = "BaselineError";
}

export class BaselineNode {
  readonly config: ClusterConfig;
  readonly paths: BaselinePaths;
  readonly address: string;
  private readonly log: (line: string) => void;

  constructor(options: BaselineOptions) {
    this.config = localClusterConfig(options.stackFile, detectPostgresMajor());
    // Absolute: the node is found again by this path on its command line.
    this.paths = baselinePaths(resolve(options.dir));
    this.address = baselineAddress();
    this.log = options.log ?? ((line) => console.log(line));
  }

  private get binDir(): string {
    return baselineLayout(this.config, this.paths).binDir;
  }

  /** Passwords: generated once, kept in the node's directory (0600, root only). */
  secrets(): BaselineSecrets {
    if (existsSync(this.paths.secretsFile)) return JSON.parse(readFileSync(this.paths.secretsFile, "utf8")) as BaselineSecrets;
    const generate = () => randomBytes(24).toString("base64url");
    const secrets = { superuser: generate(), app: generate() };
    writeFileSync(this.paths.secretsFile, JSON.stringify(secrets, null, 2), { mode: 0o600 });
    return secrets;
  }

  /** The application role's URL, as the benchmark uses it (holds a password: keep it out of logs). */
  appUrl(): string {
    return `postgresql://${ROLES.app}:${encodeURIComponent(this.secrets().app)}@${this.address}:${PORTS.postgres}/${this.config.database}`;
  }

  /** The same URL without the password (with the pgpass file, for psql). */
  publicUrl(): string {
    return `postgresql://${ROLES.app}@${this.address}:${PORTS.postgres}/${this.config.database}`;
  }

  private superuserUrl(database: string): string {
    return `postgresql://${ROLES.superuser}:${encodeURIComponent(this.secrets().superuser)}@${this.address}:${PORTS.postgres}/${database}`;
  }

  isRunning(): boolean {
    return processesUnder(this.paths.dir).length > 0;
  }

  /** A file owned by postgres (mode 0600 unless given). */
  private writeAsPostgres(file: string, content: string, mode = 0o600): void {
    const { uid, gid } = postgresIds();
    writeFileSync(file, content, { mode });
    chownSync(file, uid, gid);
  }

  private run(command: string[], what: string): string {
    const result = runAsPostgres(command);
    if (result.status !== 0) throw new BaselineError(`${what} failed: ${(result.stderr || result.stdout || "").trim()}`);
    return result.stdout ?? "";
  }

  /**
   * Creates the node when its directory has no data (initdb, the application role, the database,
   * every migration), starts it, and waits until the application role can connect. A running node
   * is left as it is. Returns what the migrations did.
   * @throws BaselineError when the address is taken by something else or PostgreSQL does not start.
   */
  async up(): Promise<{ seconds: number; schema?: ApplyResult }> {
    const started = Date.now();
    if (this.isRunning()) return { seconds: 0 };
    if (await portInUse(this.address, PORTS.postgres)) {
      throw new BaselineError(`port ${this.address}:${PORTS.postgres} (the baseline node) is already in use by another process`);
    }
    const { uid, gid } = postgresIds();
    // Parents traversable by postgres (as the cluster's state directory: 0711), the node's own 0700.
    mkdirSync(dirname(this.paths.dir), { recursive: true, mode: 0o711 });
    mkdirSync(this.paths.dir, { recursive: true, mode: 0o700 });
    chownSync(this.paths.dir, uid, gid);
    const secrets = this.secrets();
    const fresh = !existsSync(resolve(this.paths.dataDir, "PG_VERSION"));
    if (fresh) {
      this.log(`baseline: initdb in ${this.paths.dataDir}`);
      rmSync(this.paths.dataDir, { recursive: true, force: true });
      const pwfile = resolve(this.paths.dir, "initdb-password");
      this.writeAsPostgres(pwfile, secrets.superuser + "\n");
      try {
        // As Patroni's bootstrap does: UTF8, C.UTF-8, data checksums.
        this.run(
          [`${this.binDir}/initdb`, "-D", this.paths.dataDir, "-U", ROLES.superuser, `--pwfile=${pwfile}`, "-E", "UTF8", "--locale=C.UTF-8", "--data-checksums", "--auth-local=peer", "--auth-host=scram-sha-256"],
          "initdb",
        );
      } finally {
        rmSync(pwfile, { force: true });
      }
    }
    const parameters = baselineParameters(this.config, this.paths, this.address, PORTS.postgres);
    this.writeAsPostgres(this.paths.configFile, renderBaselineConf(parameters), 0o644);
    this.writeAsPostgres(this.paths.hbaFile, renderBaselineHba(), 0o644);
    writeFileSync(this.paths.pgpassFile, `${this.address}:${PORTS.postgres}:*:${ROLES.app}:${secrets.app}\n`, { mode: 0o600 });

    this.log(`baseline: starting PostgreSQL ${this.config.postgresMajor} on ${this.address}:${PORTS.postgres} (no Citus)`);
    const log = this.paths.logFile;
    const { pid } = startAsPostgres("baseline", [`${this.binDir}/postgres`, "-D", this.paths.dataDir, "-c", `config_file=${this.paths.configFile}`], log);
    const ready = await pollUntil(60_000, 250, async () => {
      if (!isAlive(pid)) throw new BaselineError(`the baseline PostgreSQL exited; its log ends:\n${tail(log)}`);
      const client = quietClient({ connectionString: this.superuserUrl("postgres"), connectionTimeoutMillis: 2000 });
      try {
        await client.connect();
        return true;
      } catch {
        return undefined;
      } finally {
        await client.end().catch(() => undefined);
      }
    });
    if (!ready) throw new BaselineError(`the baseline PostgreSQL did not accept connections within 60 s; its log ends:\n${tail(log)}`);

    // The application role and the database, as Patroni's post-bootstrap script and its citus
    // section make them on the cluster. The password travels as a bind parameter and only the
    // server builds the statement (as the post-bootstrap script's \gexec does): it is on no command line.
    const admin = quietClient({ connectionString: this.superuserUrl("postgres") });
    await admin.connect();
    try {
      const role = await admin.query<{ ddl: string }>(
        "SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', $1::text, $2::text) AS ddl WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)",
        [ROLES.app, secrets.app],
      );
      if (role.rows[0]) await admin.query(role.rows[0].ddl);
      const exists = await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [this.config.database]);
      if (exists.rowCount === 0) await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(this.config.database)}`);
    } finally {
      await admin.end();
    }
    const schema = await applyMigrations(this.superuserUrl(this.config.database), this.config, { appPassword: secrets.app });
    if (schema.citus) throw new BaselineError("the baseline database has the citus extension: it is not a plain node");
    this.log(`baseline: schema ${schema.version}${schema.applied.length > 0 ? ` (applied ${schema.applied.join(", ")})` : ", up to date"}`);
    return { seconds: (Date.now() - started) / 1000, schema };
  }

  /** Stops the node (fast shutdown; SIGKILL after 15 s); `purge` also deletes its directory. */
  async down(purge = false): Promise<{ stopped: number }> {
    let stopped = 0;
    if (existsSync(resolve(this.paths.dataDir, "postmaster.pid"))) {
      const pid = Number(readFileSync(resolve(this.paths.dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
      if (pid > 0 && isAlive(pid)) {
        // SIGINT: PostgreSQL's fast shutdown (SIGTERM would wait for every client to leave).
        signal(pid, "SIGINT");
        stopped = 1;
        await pollUntil(15_000, 100, () => (isAlive(pid) ? undefined : true));
      }
    }
    stopped = Math.max(stopped, await stopEverythingUnder(this.paths.dir));
    if (purge) rmSync(this.paths.dir, { recursive: true, force: true });
    return { stopped };
  }
}

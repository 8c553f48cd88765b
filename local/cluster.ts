// The local cluster: the rendered files of a stack, run as plain processes on loopback addresses.
// A tool for development and tests (and for a newcomer's first look), not a deployment platform.
import { haproxyServerStates } from "../components/haproxy-stats.ts";
import { randomBytes } from "node:crypto";
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import pg from "pg";
import {
  PORTS,
  ROLES,
  renderCluster,
  type Addressing,
  type ClusterLayout,
  type ClusterSecrets,
  type PoolerCredentials,
  type RenderedCluster,
  type RenderedFile,
} from "../components/render/index.ts";
import { groupName, planTopology, type ClusterConfig, type EtcdMember, type PostgresNode, type Topology } from "../components/spec.ts";
import { localAddressing, localClusterConfig, localLayout, localPaths, type LocalPaths } from "./layout.ts";
import { applyMigrations, type ApplyResult } from "../sql/apply.ts";
import { monitoringListeners, prometheusUrl, startMonitoring, writeMonitoringFiles } from "./monitoring.ts";
import { clusterMembers, etcdHealthy, leaderOf, postPatroni, type ClusterMember } from "./patroni-api.ts";
import { applyChanges, type ChangeResult } from "./apply-changes.ts";
import { request, trustByDefault, trustOrigin } from "../components/https.ts";
import { ensureLocalCertificates, loadLocalCertificates, localTlsFiles, type LocalTlsFiles } from "./tls.ts";
import { OPERATOR_CERTIFICATE, type ClusterCertificates } from "../components/tls/index.ts";
import {
  SYSTEM_PYTHON,
  detectPostgresMajor,
  isAlive,
  pollUntil,
  portInUse,
  PATRONI_REAPER,
  postgresIds,
  processesUnder,
  runAsPostgres,
  runAsPostgresAsync,
  signal,
  startAsPostgres,
  stopEverythingUnder,
  tail,
} from "./processes.ts";
import { quietClient } from "../components/pg-client.ts";

export interface LocalOptions {
  /** Pulumi.<stack>.yaml to render. */
  stackFile: string;
  /** Directory that holds all state: data, configs, logs, secrets. */
  stateDir: string;
  /** Progress lines; stdout by default. */
  log?: (line: string) => void;
}

export interface Endpoints {
  pgbouncer: string;
  readWrite: string;
  readOnly: string;
  haproxyStats: string;
  prometheus: string;
  etcd: string[];
  pgpassFile: string;
  /** The cluster CA certificate: PGSSLROOTCERT for psql, --cacert for etcdctl. */
  caFile: string;
}

export interface UpResult {
  /** From the start of `up` to a healthy cluster answering through PgBouncer (monitoring starts after). */
  seconds: number;
  endpoints: Endpoints;
  /** Patroni configs that passed `patroni --validate-config`. */
  validatedConfigs: string[];
  /** What the migrations did on this `up`. */
  schema: ApplyResult;
  /** "started": the cluster was started; "changed": it was running, and the stack's changes were applied. */
  mode: "started" | "changed";
  /** What each change step did (local/apply-changes.ts); on a fresh start, the stack's postgresParameters. */
  changes: ChangeResult[];
}

export interface GroupStatus {
  group: number;
  name: string;
  members: ClusterMember[];
}

/** A failure of `up` with one clear cause, for people (the CLI prints only the message). */
export class LocalClusterError extends Error {
  override name = "LocalClusterError";
}

export function citusInstalled(postgresMajor: number): boolean {
  return existsSync(`/usr/share/postgresql/${postgresMajor}/extension/citus.control`);
}

/** What a state directory was made for; `up` refuses a directory made for something else. */
export interface StateIdentity {
  scope: string;
  postgresMajor: number;
  database: string;
  citus: true;
  /** Member names per Citus group. */
  groups: string[][];
}

/** Patroni's role names of a standby that acknowledges commits ("on": sync_standby; "quorum": quorum_standby). */
export const SYNCHRONOUS_ROLES = ["sync_standby", "quorum_standby"];

/**
 * How long a newly started worker group (scale-out) may take to become healthy: initdb, the
 * replica's basebackup and the synchronous standby, on a 2-core machine other clusters share.
 */
export const NEW_GROUP_HEALTHY_MS = 180000;

export class LocalCluster {
  readonly config: ClusterConfig;
  readonly topology: Topology;
  readonly addressing: Addressing;
  readonly layout: ClusterLayout;
  readonly paths: LocalPaths;
  readonly tls: LocalTlsFiles;
  private readonly log: (line: string) => void;
  private cachedSecrets?: ClusterSecrets;
  private readonly startedPids = new Map<string, number>();

  constructor(options: LocalOptions) {
    const major = detectPostgresMajor();
    this.config = localClusterConfig(options.stackFile, major);
    this.topology = planTopology(this.config);
    this.addressing = localAddressing(this.topology);
    // Absolute: processes are found again by this path on their command lines.
    this.paths = localPaths(resolve(options.stateDir));
    this.layout = localLayout(this.config, this.paths);
    this.tls = localTlsFiles(this.paths.stateDir);
    this.log = options.log ?? ((line) => console.log(line));
    const certificates = loadLocalCertificates(this.tls);
    if (certificates) this.trustCertificates(certificates);
  }

  /** Makes this process's HTTPS requests to the cluster's REST APIs verify against its CA. */
  private trustCertificates(certificates: ClusterCertificates): void {
    // Patroni's REST API, on every node (also those a scale-out adds): the cluster CA.
    trustByDefault({ ca: certificates.ca });
    // etcd wants a client certificate (--client-cert-auth): the operator's.
    const operator = certificates.certificates[OPERATOR_CERTIFICATE];
    for (const member of this.topology.etcd) trustOrigin(this.etcdUrl(member), { ca: certificates.ca, cert: operator.cert, key: operator.key });
  }

  /**
   * Issues what this topology lacks (the CA on first use; certificates of nodes a scale-out adds),
   * keeps what was issued for the same names, and trusts the CA for this process's requests.
   */
  issueCertificates(): ClusterCertificates {
    const certificates = ensureLocalCertificates(this.tls, this.topology.scope, this.topology, this.addressing);
    this.trustCertificates(certificates);
    return certificates;
  }

  /** The certificates issued for this state directory (by `up`). */
  certificates(): ClusterCertificates {
    const certificates = loadLocalCertificates(this.tls);
    if (!certificates) throw new LocalClusterError(`no certificates in ${this.tls.dir}: \`npm run local -- up\` issues them`);
    return certificates;
  }

  /** libpq options every TCP connection to the cluster takes: TLS, server verified by CA and name. */
  sslQuery(): string {
    return `sslmode=verify-full&sslrootcert=${encodeURIComponent(this.tls.caFile)}`;
  }

  get nodes(): PostgresNode[] {
    return this.topology.groups.flat();
  }

  node(name: string): PostgresNode {
    const node = this.nodes.find((n) => n.name === name);
    if (!node) throw new Error(`no PostgreSQL node named ${name}`);
    return node;
  }

  /** "user:password" for Patroni's REST endpoints that change something (keep it out of logs). */
  restApiAuth(): string {
    return `${ROLES.restApi}:${this.secrets().restApi}`;
  }

  restUrl(node: PostgresNode): string {
    return `https://${this.addressing.postgres(node).connect}:${PORTS.patroniRest}`;
  }

  etcdUrl(member: EtcdMember): string {
    return `https://${this.addressing.etcd(member).connect}:${PORTS.etcdClient}`;
  }

  /** Passwords: generated once, kept in the state directory (mode 0600, root only). */
  secrets(): ClusterSecrets {
    if (this.cachedSecrets) return this.cachedSecrets;
    if (existsSync(this.paths.secretsFile)) {
      this.cachedSecrets = JSON.parse(readFileSync(this.paths.secretsFile, "utf8")) as ClusterSecrets;
    } else {
      const generate = () => randomBytes(24).toString("base64url");
      this.cachedSecrets = { superuser: generate(), replication: generate(), rewind: generate(), restApi: generate(), app: generate() };
      mkdirSync(this.paths.stateDir, { recursive: true, mode: 0o711 });
      writeFileSync(this.paths.secretsFile, JSON.stringify(this.cachedSecrets, null, 2), { mode: 0o600 });
    }
    return this.cachedSecrets;
  }

  /**
   * The exporters' role's password (ROLES.monitor), generated once, kept beside the others (0600, root
   * only) in a file of its own.
   */
  monitorPassword(): string {
    return this.generatedSecret("monitor-password");
  }

  /**
   * PgBouncer's auth file's credentials: its lookup role's and its admin console's (generated once,
   * each in a file of its own like the monitoring role's), and the monitoring role's.
   */
  poolerCredentials(): PoolerCredentials {
    return { lookup: this.generatedSecret("pooler-lookup-password"), admin: this.generatedSecret("pooler-admin-password"), monitor: this.monitorPassword() };
  }

  /** A password generated once and kept in the state directory under `name` (0600, root only). */
  private generatedSecret(name: string): string {
    const file = join(this.paths.stateDir, name);
    if (existsSync(file)) return readFileSync(file, "utf8");
    const password = randomBytes(24).toString("base64url");
    mkdirSync(this.paths.stateDir, { recursive: true, mode: 0o711 });
    writeFileSync(file, password, { mode: 0o600 });
    return password;
  }

  /**
   * Makes `next` the passwords this runner renders and connects with; `persist` also writes them to
   * the secrets file (0600). For the password rotation (local/rotate.ts), which calls it step by step.
   */
  setSecrets(next: ClusterSecrets, persist: boolean): void {
    this.cachedSecrets = { ...next };
    if (persist) writeFileSync(this.paths.secretsFile, JSON.stringify(this.cachedSecrets, null, 2), { mode: 0o600 });
  }

  /**
   * Connection string through PgBouncer (holds a password: keep it out of logs): the application
   * role, or PgBouncer's admin console user (`admin`, database `pgbouncer`). The superuser does not log
   * in through PgBouncer (its auth_query refuses superusers).
   */
  pgbouncerUrl(user: "app" | "admin" = "app", database = this.config.database): string {
    const role = user === "app" ? ROLES.app : ROLES.poolerAdmin;
    const password = user === "app" ? this.secrets().app : this.poolerCredentials().admin;
    return `postgresql://${role}:${encodeURIComponent(password)}@${this.addressing.pgbouncer.connect}:${PORTS.pgbouncer}/${database}?${this.sslQuery()}`;
  }

  /** Superuser connection string through HAProxy's read-write listener (the coordinator primary). */
  primaryUrl(database = "postgres"): string {
    const password = encodeURIComponent(this.secrets().superuser);
    return `postgresql://${ROLES.superuser}:${password}@${this.addressing.haproxy.connect}:${PORTS.haproxyReadWrite}/${database}?${this.sslQuery()}`;
  }

  /** Direct superuser connection string to one node. */
  nodeUrl(node: PostgresNode, database = "postgres"): string {
    const password = encodeURIComponent(this.secrets().superuser);
    return `postgresql://${ROLES.superuser}:${password}@${this.addressing.postgres(node).connect}:${PORTS.postgres}/${database}?${this.sslQuery()}`;
  }

  endpoints(): Endpoints {
    const router = this.addressing.haproxy.connect;
    return {
      pgbouncer: `postgresql://${ROLES.app}@${this.addressing.pgbouncer.connect}:${PORTS.pgbouncer}/${this.config.database}?sslmode=verify-full`,
      readWrite: `${router}:${PORTS.haproxyReadWrite}`,
      readOnly: `${router}:${PORTS.haproxyReadOnly}`,
      haproxyStats: `http://${router}:${PORTS.haproxyStats}/`,
      prometheus: prometheusUrl(),
      etcd: this.topology.etcd.map((m) => this.etcdUrl(m)),
      pgpassFile: this.paths.pgpassFile,
      caFile: this.tls.caFile,
    };
  }

  /** The shipped rendering (Patroni's citus section, one scope), with this machine's addresses and paths. */
  render(): RenderedCluster {
    return renderCluster(this.config, this.topology, this.addressing, this.layout, this.secrets(), this.poolerCredentials(), this.certificates());
  }

  identity(): StateIdentity {
    const { scope, groups } = this.topology;
    return { scope, postgresMajor: this.config.postgresMajor, database: this.config.database, citus: true, groups: groups.map((g) => g.map((n) => n.name)) };
  }

  /**
   * Refuses a state directory made for another configuration (scope, groups, PostgreSQL major,
   * database) or by a version of this runner that did not record one: reusing it would fail half-way
   * (e.g. data without Citus, or of another major). Records the identity of a new directory.
   */
  private checkStateIdentity(): void {
    const file = this.paths.identityFile;
    const wanted = this.identity();
    if (existsSync(file)) {
      const found = JSON.parse(readFileSync(file, "utf8")) as StateIdentity;
      const differences = (Object.keys(wanted) as (keyof StateIdentity)[])
        .filter((key) => JSON.stringify(found[key]) !== JSON.stringify(wanted[key]))
        .map((key) => `${key}: ${JSON.stringify(found[key])} there, ${JSON.stringify(wanted[key])} now`);
      if (differences.length > 0) {
        const onlyGroups = differences.length === 1 && differences[0].startsWith("groups:");
        throw new LocalClusterError(
          (onlyGroups ? "workerGroups changes only on a running cluster (start it with its old stack file, then `up` again scales it): " : "") +
          `the state directory ${this.paths.stateDir} was made for another configuration (${differences.join("; ")}): ` +
            "run `npm run local -- down --purge` to delete it, or pass --state DIR for a new one",
        );
      }
      return;
    }
    const withData = this.nodes.filter((n) => existsSync(join(this.layout.postgres(n).dataDir, "PG_VERSION")));
    if (withData.length > 0) {
      throw new LocalClusterError(
        `the state directory ${this.paths.stateDir} holds data (${withData.map((n) => n.name).join(", ")}) but no record of the configuration it was made for: ` +
          "run `npm run local -- down --purge` to delete it, or pass --state DIR for a new one",
      );
    }
    mkdirSync(this.paths.stateDir, { recursive: true, mode: 0o711 });
    writeFileSync(file, JSON.stringify(wanted, null, 2) + "\n", { mode: 0o644 });
  }

  // ------------------------------------------------------------------------------------------
  // up

  /** Every listener of the cluster, so `up` can refuse at once when one is taken. */
  listeners(): { what: string; host: string; port: number }[] {
    const list: { what: string; host: string; port: number }[] = [];
    for (const member of this.topology.etcd) {
      const host = this.addressing.etcd(member).listen;
      list.push({ what: `etcd ${member.name} client`, host, port: PORTS.etcdClient }, { what: `etcd ${member.name} peer`, host, port: PORTS.etcdPeer });
    }
    for (const node of this.nodes) {
      const host = this.addressing.postgres(node).listen;
      list.push({ what: `PostgreSQL ${node.name}`, host, port: PORTS.postgres }, { what: `Patroni REST ${node.name}`, host, port: PORTS.patroniRest });
    }
    const router = this.addressing.haproxy.listen;
    list.push(
      { what: "HAProxy read-write", host: router, port: PORTS.haproxyReadWrite },
      { what: "HAProxy read-only", host: router, port: PORTS.haproxyReadOnly },
      { what: "HAProxy stats", host: router, port: PORTS.haproxyStats },
      { what: "PgBouncer", host: this.addressing.pgbouncer.listen, port: PORTS.pgbouncer },
      ...monitoringListeners(this),
    );
    return list;
  }

  /** Creates a directory under the state directory, with every new level owned by postgres. */
  ensureDir(dir: string): void {
    if (existsSync(dir)) return;
    if (dir !== this.paths.stateDir) this.ensureDir(dirname(dir));
    const { uid, gid } = postgresIds();
    mkdirSync(dir, { mode: 0o700 });
    chownSync(dir, uid, gid);
  }

  writeFile(file: RenderedFile): void {
    const { uid, gid } = postgresIds();
    this.ensureDir(dirname(file.path));
    const mode = file.executable ? 0o700 : file.secret ? 0o600 : 0o644;
    writeFileSync(file.path, file.content, { mode });
    chownSync(file.path, uid, gid);
  }

  private prepareDirectories(): void {
    mkdirSync(this.paths.stateDir, { recursive: true, mode: 0o711 });
    this.ensureDir(this.paths.logDir);
    for (const member of this.topology.etcd) this.ensureDir(this.paths.nodeDir(member.name));
  }

  private writeRenderedFiles(rendered: RenderedCluster): void {
    for (const node of rendered.postgres) node.files.forEach((f) => this.writeFile(f));
    for (const member of rendered.etcd) member.files.forEach((f) => this.writeFile(f));
    rendered.haproxy.forEach((f) => this.writeFile(f));
    rendered.pgbouncer.forEach((f) => this.writeFile(f));
    // A pgpass for people and tools on this machine (the invoking user, root): psql through PgBouncer.
    const pgpass = `${this.addressing.pgbouncer.connect}:${PORTS.pgbouncer}:*:${ROLES.app}:${this.secrets().app}\n`;
    writeFileSync(this.paths.pgpassFile, pgpass, { mode: 0o600 });
  }

  logFile(name: string): string {
    return join(this.paths.logDir, `${name}.log`);
  }

  startEtcd(member: EtcdMember): void {
    const rendered = this.render().etcd.find((e) => e.member.name === member.name)!;
    this.start(member.name, ["/usr/bin/etcd", ...rendered.args]);
  }

  startPatroni(node: PostgresNode): void {
    const configFile = this.layout.postgres(node).configFile;
    this.start(node.name, [...PATRONI_REAPER, SYSTEM_PYTHON, "/usr/bin/patroni", configFile]);
    void this.reloadOnceUp(node);
  }

  /**
   * Patroni computes `citus.local_hostname` (how Citus reaches its own node) from its local
   * connection settings, which are still empty when a freshly started Patroni first builds the
   * PostgreSQL parameters (patroni/postgresql/mpp/citus.py: `conn_kwargs.get('host', 'localhost')`).
   * A node started into an existing cluster (after a kill, a scale-out) then runs with "localhost",
   * which in a container is the node itself but here is 127.0.0.1, where no node listens: shard moves
   * and reference-table copies fail. A reload once the REST API answers recomputes it (the node's
   * socket directory); bootstrap gets the same from its first dynamic-configuration reload.
   * Only once Patroni reports PostgreSQL running: a reload while a new node still bootstraps (no data
   * directory yet, or initdb/basebackup under way) fails in Patroni's write_postgresql_conf
   * (FileNotFoundError renaming postgresql.conf; patroni/postgresql/config.py) and fixes nothing,
   * or during initdb rewrites postgresql.conf under it ("syntax error in file .../postgresql.conf
   * line 42, near token "these"", then "Failed to bootstrap cluster"; seen under load).
   */
  private async reloadOnceUp(node: PostgresNode): Promise<void> {
    // A new replica's basebackup on a busy machine can take minutes: wait as long as a scale-out does.
    // Given up at once when that Patroni exits (a test killing it): nothing then to reload.
    const up = await pollUntil(NEW_GROUP_HEALTHY_MS, 500, async () => {
      if (this.exited(node.name)) return false;
      // The catch after the parse: a body that is not JSON counts as not yet running (this promise
      // is not awaited by its caller, so nothing here may reject).
      const running = await request(`${this.restUrl(node)}/patroni`, { timeoutMs: 1000 })
        .then((r) => r.status === 200 && ["running", "streaming"].includes((JSON.parse(r.text) as { state?: string }).state ?? ""))
        .catch(() => false);
      return running ? true : undefined;
    });
    if (up) await postPatroni(this.restUrl(node), "/reload", this.restApiAuth(), {}).catch(() => undefined);
  }

  private startRouter(): void {
    this.start("haproxy", ["/usr/sbin/haproxy", "-db", "-f", this.layout.haproxyConfigFile]);
    this.start("pgbouncer", ["/usr/sbin/pgbouncer", this.layout.pgbouncerConfigFile]);
  }

  /** Validates Patroni configs with Patroni itself: checks schema, free ports, reachable etcd, bin_dir. */
  async validatePatroniConfig(file: string): Promise<{ ok: boolean; output: string }> {
    const result = await runAsPostgresAsync([SYSTEM_PYTHON, "/usr/bin/patroni", "--validate-config", file]);
    return { ok: result.status === 0 && result.output === "", output: result.output };
  }

  /** `lastSeen`: what the last check observed, added to the timeout's message. */
  private async waitFor<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>, failFast?: () => string | undefined, lastSeen?: () => string): Promise<T> {
    const result = await pollUntil(timeoutMs, 250, async () => {
      const value = await check();
      const failure = value === undefined ? failFast?.() : undefined;
      if (failure) throw new LocalClusterError(failure);
      return value;
    });
    if (result === undefined) throw new LocalClusterError(`${what}: not ready after ${Math.round(timeoutMs / 1000)} s${lastSeen ? `; last seen: ${lastSeen()}` : ""}`);
    return result;
  }

  /** Starts a process as postgres, logging to log/<name>.log, and remembers its PID. */
  start(name: string, command: string[], env: NodeJS.ProcessEnv = {}): void {
    this.startedPids.set(name, startAsPostgres(name, command, this.logFile(name), env).pid);
  }

  /**
   * Whether a process this runner started has exited. By the PID spawn returned: a /proc scan could
   * miss a child that has not yet exec'd its command (its command line is still node's).
   */
  private exited(name: string): boolean {
    const pid = this.startedPids.get(name);
    return pid !== undefined && !isAlive(pid);
  }

  /** Every process of a node (its Patroni and the reaper running it; not PostgreSQL, whose command has -D) or etcd member. */
  private pidsOf(name: string): number[] {
    const marker = name.startsWith(`${this.topology.scope}-etcd`) ? `--name=${name}` : `/${name}/`;
    return processesUnder(this.paths.stateDir)
      .filter((p) => p.command.includes(marker) && !p.command.includes(" -D "))
      .map((p) => p.pid);
  }

  /** The PIDs of a node's Patroni and of the reaper that runs it (PATRONI_REAPER). */
  patroniPids(node: PostgresNode): number[] {
    return this.pidsOf(node.name);
  }

  async waitEtcdHealthy(timeoutMs = 30000): Promise<void> {
    await this.waitFor(
      "etcd",
      timeoutMs,
      async () => ((await Promise.all(this.topology.etcd.map((m) => etcdHealthy(this.etcdUrl(m))))).every(Boolean) ? true : undefined),
      () => {
        for (const member of this.topology.etcd) {
          if (this.exited(member.name)) {
            return `etcd is not reachable: member ${member.name} (${this.etcdUrl(member)}) exited before it became healthy; its log ends:\n${tail(this.logFile(member.name))}`;
          }
        }
        return undefined;
      },
    );
  }

  /** Waits until the group has one running leader, every other member streams from it, and (in
   * synchronous mode) one of them is the synchronous standby. */
  async waitGroupHealthy(group: number, timeoutMs = 120000, options: { failWhenExited?: boolean } = {}): Promise<ClusterMember[]> {
    const nodes = this.topology.groups[group];
    // What the last poll saw, for the timeout's message: which condition never held.
    let seen = "no member's REST API answered";
    return this.waitFor(
      `group ${groupName(this.topology.scope, group)}`,
      timeoutMs,
      async () => {
        const members = await clusterMembers(nodes.map((n) => this.restUrl(n)));
        if (members) seen = `members ${members.map((m) => `${m.name} ${m.role}/${m.state}`).join(", ") || "none"} (of ${nodes.length})`;
        const leader = leaderOf(members);
        if (!members || !leader || members.length !== nodes.length) return undefined;
        if (!members.every((m) => m.state === "running" || m.state === "streaming")) return undefined;
        // With synchronous replication the group is protected only once Patroni has named a synchronous
        // standby: until then commits are acknowledged without one, and only that standby may be promoted.
        const needsSyncStandby = this.config.synchronousMode !== "off" && nodes.length > 1;
        if (needsSyncStandby && !members.some((m) => SYNCHRONOUS_ROLES.includes(m.role))) {
          seen += "; no synchronous standby named yet";
          return undefined;
        }
        const streaming = await this.streamingReplicas(this.node(leader.name));
        if (streaming < nodes.length - 1) seen += `; ${leader.name} sees ${streaming < 0 ? "? (no answer)" : streaming} of ${nodes.length - 1} replica(s) streaming`;
        return streaming >= nodes.length - 1 ? members : undefined;
      },
      () => {
        // A member this runner started whose Patroni exited never becomes healthy: say so now, with its
        // log's end. Only when asked: a test may kill a member and start it again while waiting.
        const gone = options.failWhenExited ? nodes.find((n) => this.exited(n.name)) : undefined;
        return gone ? `group ${groupName(this.topology.scope, group)}: Patroni of ${gone.name} exited; its log ends:\n${tail(this.logFile(gone.name))}` : undefined;
      },
      () => seen,
    );
  }

  /** Replicas in `streaming` state as the given primary sees them (pg_stat_replication). */
  async streamingReplicas(primary: PostgresNode): Promise<number> {
    const client = quietClient({ connectionString: this.nodeUrl(primary), connectionTimeoutMillis: 2000 });
    try {
      await client.connect();
      const result = await client.query("SELECT count(*)::int AS n FROM pg_stat_replication WHERE state = 'streaming'");
      return result.rows[0].n as number;
    } catch {
      return -1;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** One query through PgBouncer -> HAProxy -> coordinator primary. */
  async queryThroughPooler(sql: string, user: "app" | "admin" = "app", database = this.config.database, queryTimeoutMs = 5000): Promise<pg.QueryResult> {
    const client = quietClient({ connectionString: this.pgbouncerUrl(user, database), connectionTimeoutMillis: 3000, query_timeout: queryTimeoutMs });
    try {
      await client.connect();
      return await client.query(sql);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** Each server's status in a HAProxy backend ("UP", "UP 1/2", "DOWN", ...), from its stats CSV. */
  async haproxyServerStates(backend: string): Promise<Map<string, string>> {
    try {
      return await haproxyServerStates(`http://${this.addressing.haproxy.connect}:${PORTS.haproxyStats}/;csv`, backend, 1000);
    } catch {
      return new Map();
    }
  }

  isRunning(): boolean {
    return processesUnder(this.paths.stateDir).length > 0;
  }

  /** Starts everything and waits until healthy. Returns the seconds from start to healthy. */
  async up(): Promise<UpResult> {
    const started = Date.now();
    if (this.isRunning()) return this.applyToRunning(started);
    if (this.config.synchronousMode === "quorum" && patroniMajor() < 4) {
      throw new LocalClusterError(`synchronousMode "quorum" needs Patroni 4 or later; this machine has Patroni ${patroniVersion()}: use "on"`);
    }
    for (const listener of this.listeners()) {
      if (await portInUse(listener.host, listener.port)) {
        throw new LocalClusterError(`port ${listener.host}:${listener.port} (${listener.what}) is already in use by another process: stop it, or run \`npm run local -- down\` if it is a leftover of this cluster`);
      }
    }
    if (!citusInstalled(this.config.postgresMajor)) {
      throw new LocalClusterError(
        `Citus is not installed for PostgreSQL ${this.config.postgresMajor} on this machine (no citus.control): ` +
          "run `sudo bash scripts/install.sh`, which builds it from the vendored source",
      );
    }
    this.checkStateIdentity();
    this.prepareDirectories();
    this.issueCertificates();
    const rendered = this.render();
    this.writeRenderedFiles(rendered);

    this.log(`starting etcd (${this.topology.etcd.length} members)`);
    this.topology.etcd.forEach((m) => this.startEtcd(m));
    await this.waitEtcdHealthy();

    this.log("validating every Patroni config with patroni --validate-config");
    const configs = this.nodes.map((n) => this.layout.postgres(n).configFile);
    const validated = await Promise.all(configs.map(async (file) => ({ file, ...(await this.validatePatroniConfig(file)) })));
    for (const { file, ok, output } of validated) {
      if (!ok) throw new LocalClusterError(`patroni --validate-config rejected ${file}:\n${output}`);
    }

    this.log(`starting Patroni on ${this.nodes.length} PostgreSQL nodes in ${this.topology.groups.length} groups`);
    this.nodes.forEach((n) => this.startPatroni(n));
    for (let group = 0; group < this.topology.groups.length; group++) {
      const members = await this.waitGroupHealthy(group);
      this.log(`  ${groupName(this.topology.scope, group)}: leader ${leaderOf(members)?.name}, ${members.length - 1} replica(s) streaming`);
    }

    this.log("starting HAProxy and PgBouncer");
    this.startRouter();
    // HAProxy counts a server as up until its first checks fail, so first connections may reach a
    // standby: wait until HAProxy routes read-write traffic to the primary alone, then for an answer.
    await this.waitFor("HAProxy: the coordinator primary alone in the read-write backend", 30000, async () => {
      const states = await this.haproxyServerStates("coordinator_primary");
      const leader = (await this.leader(0))?.name;
      // "UP 1/2" is a server going down: still routable. Only "DOWN" is out.
      const routable = [...states].filter(([, status]) => !status.startsWith("DOWN")).map(([server]) => server);
      return routable.length === 1 && routable[0] === leader ? true : undefined;
    });
    // What the Schema component does during `pulumi up`, before any application login (PgBouncer looks
    // the application role up through the lookup role the migrations create: auth_query): the
    // migrations through HAProxy's read-write listener (a session of their own: the runner holds an
    // advisory lock), as the superuser.
    const schema = await applyMigrations(this.primaryUrl(this.config.database), this.config, {
      appPassword: this.secrets().app,
      monitorPassword: this.monitorPassword(),
      poolerLookupPassword: this.poolerCredentials().lookup,
    });
    this.log(`schema ${schema.version}: ${schema.applied.length > 0 ? `applied ${schema.applied.join(", ")}` : "up to date"}; ${schema.notes.join("; ")}`);
    await this.waitFor("PgBouncer -> HAProxy -> coordinator primary", 30000, async () => {
      try {
        const result = await this.queryThroughPooler("SELECT pg_is_in_recovery() AS standby");
        return result.rows[0].standby === false ? true : undefined;
      } catch {
        return undefined;
      }
    });
    const seconds = (Date.now() - started) / 1000;

    // Database-level settings (hnsw.ef_search, iterative scans) reach new sessions only: have PgBouncer
    // replace the server connections it opened before the migrations.
    await this.queryThroughPooler("RECONNECT", "admin", "pgbouncer");

    // The stack's postgresParameters go into Patroni's dynamic configuration (a no-op without any).
    const changes = await applyChanges(this, this.log);

    this.log("starting Prometheus, postgres_exporter on every node and the PgBouncer exporter");
    writeMonitoringFiles(this);
    startMonitoring(this);
    await this.waitFor("Prometheus", 30000, async () => {
      const ready = await fetch(`${prometheusUrl()}/-/ready`, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false);
      return ready ? true : undefined;
    }, () => (this.exited("prometheus") ? `Prometheus exited; its log ends:\n${tail(this.logFile("prometheus"))}` : undefined));
    return { seconds, endpoints: this.endpoints(), validatedConfigs: validated.map((v) => v.file), schema, mode: "started", changes };
  }

  /**
   * `up` on a running cluster: the same configuration (scope, groups, major, database; else refused
   * as for a stopped one), every group healthy (else refused: `down` first), then the rendered files
   * rewritten and every change step applied (local/apply-changes.ts), and the migrations.
   */
  private async applyToRunning(started: number): Promise<UpResult> {
    this.checkStateIdentity();
    this.issueCertificates();
    for (let group = 0; group < this.topology.groups.length; group++) {
      try {
        await this.waitGroupHealthy(group, 30000);
      } catch {
        throw new LocalClusterError(
          `the local cluster is running (processes under ${this.paths.stateDir}) but ${groupName(this.topology.scope, group)} is not healthy: ` +
            "changes are applied to a healthy cluster only; run `npm run local -- status`, or `down` and `up` again",
        );
      }
    }
    this.log("the cluster is running: applying the stack's changes to it");
    this.writeRenderedFiles(this.render());
    const changes = await applyChanges(this, this.log);
    const schema = await applyMigrations(this.primaryUrl(this.config.database), this.config, { appPassword: this.secrets().app, poolerLookupPassword: this.poolerCredentials().lookup });
    this.log(`schema ${schema.version}: ${schema.applied.length > 0 ? `applied ${schema.applied.join(", ")}` : "up to date"}`);
    return { seconds: (Date.now() - started) / 1000, endpoints: this.endpoints(), validatedConfigs: [], schema, mode: "changed", changes };
  }

  // ------------------------------------------------------------------------------------------
  // status, down, and the pieces the drill and the tests use

  async status(): Promise<GroupStatus[]> {
    const groups: GroupStatus[] = [];
    for (let group = 0; group < this.topology.groups.length; group++) {
      const members = (await clusterMembers(this.topology.groups[group].map((n) => this.restUrl(n)))) ?? [];
      groups.push({ group, name: groupName(this.topology.scope, group), members });
    }
    return groups;
  }

  async down(purge = false): Promise<{ stopped: number; portsStillTaken: string[] }> {
    const stopped = await stopEverythingUnder(this.paths.stateDir);
    // Patroni killed with SIGKILL leaves its postmaster running: stop those by their pid files too.
    for (const node of this.nodes) {
      const pid = this.postmasterPid(node);
      if (pid !== undefined && isAlive(pid)) signal(pid, "SIGKILL");
    }
    const portsStillTaken: string[] = [];
    for (const listener of this.listeners()) {
      if (await portInUse(listener.host, listener.port)) portsStillTaken.push(`${listener.host}:${listener.port} (${listener.what})`);
    }
    if (purge) rmSync(this.paths.stateDir, { recursive: true, force: true });
    return { stopped, portsStillTaken };
  }

  /** The current leader of a group, by Patroni. */
  async leader(group: number): Promise<PostgresNode | undefined> {
    const leader = leaderOf(await clusterMembers(this.topology.groups[group].map((n) => this.restUrl(n))));
    return leader ? this.node(leader.name) : undefined;
  }

  /** The PID in a node's postmaster.pid (the postmaster outlives a SIGKILL of Patroni). */
  private postmasterPid(node: PostgresNode): number | undefined {
    const pidFile = join(this.layout.postgres(node).dataDir, "postmaster.pid");
    if (!existsSync(pidFile)) return undefined;
    const pid = Number(readFileSync(pidFile, "utf8").split("\n")[0]);
    return pid > 0 ? pid : undefined;
  }

  /** SIGKILL of a node's Patroni and its postmaster: a crash of the whole node. */
  killNode(node: PostgresNode): void {
    // The reaper and Patroni both: SIGKILL cannot be passed on, and Patroni would outlive its reaper.
    for (const pid of this.pidsOf(node.name)) signal(pid, "SIGKILL");
    const postmaster = this.postmasterPid(node);
    if (postmaster !== undefined) signal(postmaster, "SIGKILL");
  }

  /** SIGKILL of a node's postmaster alone: PostgreSQL crashes, Patroni lives on and acts. */
  killPostgres(node: PostgresNode): void {
    const postmaster = this.postmasterPid(node);
    if (postmaster !== undefined) signal(postmaster, "SIGKILL");
  }

  /**
   * SIGSTOP (or SIGCONT) of a node's postmaster and every child of it (walreceiver, startup, ...):
   * PostgreSQL hangs while its Patroni lives on, as on a stalled disk or a frozen VM. For tests
   * that need a standby not to stream for a while.
   */
  pausePostgres(node: PostgresNode, paused: boolean): void {
    const postmaster = this.postmasterPid(node);
    if (postmaster === undefined) return;
    const children = readdirSync("/proc")
      .filter((entry) => /^\d+$/.test(entry))
      .filter((entry) => {
        try {
          // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces, so read after ")".
          const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
          return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === postmaster;
        } catch {
          return false; // gone meanwhile
        }
      })
      .map(Number);
    for (const pid of [postmaster, ...children]) signal(pid, paused ? "SIGSTOP" : "SIGCONT");
  }

  killEtcd(member: EtcdMember): void {
    for (const pid of this.pidsOf(member.name)) signal(pid, "SIGKILL");
  }
}

export function patroniVersion(): string {
  const result = runAsPostgres([SYSTEM_PYTHON, "/usr/bin/patroni", "--version"]);
  return (result.stdout ?? "").trim().split(/\s+/)[1] ?? "unknown";
}

function patroniMajor(): number {
  return Number(patroniVersion().split(".")[0]) || 0;
}

// patroni.yml for one PostgreSQL node, and the post-bootstrap script Patroni runs once per group.
import { stringify } from "yaml";
import type { ClusterConfig, PostgresNode, Topology } from "../spec.ts";
import { EXPORTER_APPLICATION_NAME } from "../../monitoring/exporter-queries.ts";
import { PORTS, ROLES, type Addressing, type ClusterSecrets, type PostgresLayout } from "./types.ts";
import { restoreCommand } from "./timeline-guard.ts";


/** maintenance_work_mem of every node, MiB: a quarter of its memory, at most 2 GiB. */
export function maintenanceWorkMemMb(config: ClusterConfig): number {
  return Math.max(1, Math.floor(Math.min(config.databaseMemoryMb / 4, 2048)));
}

/**
 * The /dev/shm a node needs, MiB: a parallel HNSW build puts its whole graph area
 * (maintenance_work_mem) into one dynamic shared memory segment there, and parallel queries add
 * smaller ones. Docker's default of 64 MiB makes such builds fail ("could not resize shared memory
 * segment ... No space left on device").
 */
export function sharedMemoryMb(config: ClusterConfig): number {
  return maintenanceWorkMemMb(config) + 64;
}

/**
 * Connections Citus' adaptive executor opens to one worker for one multi-shard query, and keeps
 * cached between queries: one per core of a worker (at least 2). Measured on 2 cores with 12 shards
 * on 2 workers (issue 16): with the defaults (pool 16, 1 cached connection) every cross-shard query
 * beyond the first connection opens and closes connections, and 8 clients got 105 queries/s against
 * 161-191 with connections cached and the pool at 2; a pool of 1 serialises each query's tasks and
 * tripled the one-client latency.
 */
/** max_connections of every node. */
const MAX_CONNECTIONS = 200;

export function citusExecutorConnections(config: ClusterConfig): number {
  return Math.max(2, Math.ceil(config.databaseCpus));
}

/**
 * The cluster-wide PostgreSQL parameters sized from a node's memory and CPUs, with HNSW index builds
 * in mind: what a fresh cluster bootstraps with (bootstrap.dcs), before any `postgresParameters`.
 */
export function sizedParameters(config: ClusterConfig): Record<string, string | number> {
  const memoryMb = config.databaseMemoryMb;
  const mb = (n: number) => `${Math.max(1, Math.floor(n))}MB`;
  return {
    // HNSW builds are fastest when the whole graph fits in maintenance_work_mem.
    shared_buffers: mb(memoryMb / 4),
    effective_cache_size: mb((memoryMb * 3) / 4),
    maintenance_work_mem: mb(maintenanceWorkMemMb(config)),
    work_mem: mb(Math.max(4, memoryMb / 256)),
    max_parallel_maintenance_workers: Math.max(1, Math.min(4, Math.floor(config.databaseCpus))),
    max_connections: MAX_CONNECTIONS,
    max_wal_senders: 10,
    max_replication_slots: 10,
    wal_keep_size: "256MB",
    hot_standby: "on",
    wal_log_hints: "on",
    // After a crash PostgreSQL first fsyncs every file of the data directory, one open() and fsync()
    // each (xlog.c StartupXLOG, SyncDataDirectory): 1.4-3.2 s of a crash restart under I/O load here
    // (1460 files, load average ~21). syncfs() asks the kernel once per file system: 0.05-0.22 s
    // at load 35. It also writes out other programs' dirty data on the same file system, and Linux
    // before 5.8 did not report its write errors (PostgreSQL's documentation): Debian 12 runs 6.1.
    recovery_init_sync_method: "syncfs",
    password_encryption: "scram-sha-256",
    // A dead worker's address may not answer at all (a killed container): Citus' default of 30 s
    // would hold every query to it that long after a failover.
    "citus.node_connection_timeout": 5000,
    // A lock wait longer than deadlock_timeout (1 s) is logged: during a worker failover Patroni's
    // citus_update_node on the coordinator waits for the group's in-flight queries (node_metadata.c).
    log_lock_waits: "on",
    // Cross-shard queries under concurrency (see citusExecutorConnections): few connections per query
    // and worker, kept open; all sessions together open at most max_connections - 20 to one worker,
    // leaving room for replication, Patroni and superuser connections there.
    "citus.max_adaptive_executor_pool_size": citusExecutorConnections(config),
    "citus.max_cached_conns_per_worker": citusExecutorConnections(config),
    "citus.max_shared_pool_size": MAX_CONNECTIONS - 20,
    // Citus hides shard tables from other sessions' catalogs: postgres_exporter must see them.
    "citus.show_shards_for_app_name_prefixes": EXPORTER_APPLICATION_NAME,
  };
}

/**
 * PostgreSQL's TLS parameters, and the libpq options of connections a node opens to others
 * (replication, pg_rewind, Citus): the server's certificate is checked against the cluster CA and
 * its name against the address dialled (verify-full). Empty when the layout has no TLS.
 */
export function postgresTlsParameters(layout: PostgresLayout): Record<string, string> {
  if (!layout.tls) return {};
  return {
    ssl: "on",
    ssl_cert_file: layout.tls.certFile,
    ssl_key_file: layout.tls.keyFile,
    ssl_ca_file: layout.tls.caFile,
    ssl_min_protocol_version: "TLSv1.2",
  };
}

/** libpq options for a node's outgoing connections: `sslmode`, `sslrootcert` (none without TLS). */
export function clientTlsOptions(layout: PostgresLayout): Record<string, string> {
  return layout.tls ? { sslmode: "verify-full", sslrootcert: layout.tls.caFile } : {};
}

/**
 * pg_hba: unix socket rules (peer for the postgres OS user; Patroni's replication check), then the
 * cluster network, password (scram-sha-256) and, with TLS, only over TLS (`hostssl`): a plain TCP
 * connection matches no line and is refused.
 */
export function pgHba(addressing: Addressing, layout: PostgresLayout): string[] {
  const host = layout.tls ? "hostssl" : "host";
  return [
    "local all all peer",
    // Patroni reads its own timeline over a replication connection on the unix socket.
    `local replication ${ROLES.replication} scram-sha-256`,
    `${host} replication ${ROLES.replication} ${addressing.clusterNetwork} scram-sha-256`,
    `${host} all all ${addressing.clusterNetwork} scram-sha-256`,
  ];
}

/**
 * The parameters every node of the cluster runs with, as Patroni's dynamic configuration carries
 * them: the sized ones, overridden by the stack's `postgresParameters`. The rollout
 * (components/rollout/) keeps each group's DCS config equal to this; nothing changeable is in
 * patroni.yml's local `postgresql.parameters`, which would take precedence over the DCS
 * (patroni/config.py, _build_effective_configuration), nor in any file a container is created from.
 */
export function dynamicParameters(config: ClusterConfig): Record<string, string | number | boolean> {
  return { ...sizedParameters(config), ...config.postgresParameters };
}

/** The parameters of one node's own, in patroni.yml: its socket directory, TLS files and Citus' libpq options. */
export function nodeParameters(layout: PostgresLayout): Record<string, string> {
  return {
    unix_socket_directories: layout.socketDir,
    ...postgresTlsParameters(layout),
    // Node-local because the CA file's path is (and the DCS value would be the same on every node).
    // A connection Citus already holds to a worker that vanished would wait for TCP's own
    // retransmission timeout (many minutes): give up on unacknowledged data after 10 s, and probe
    // idle connections (libpq keywords Citus allows here; sslmode=require is Citus' default). With
    // TLS, workers are verified against the cluster CA and their pg_dist_node names (verify-full).
    "citus.node_conninfo": `${layout.tls ? `sslmode=verify-full sslrootcert=${layout.tls.caFile}` : "sslmode=require"} tcp_user_timeout=10000 keepalives=1 keepalives_idle=10 keepalives_interval=2 keepalives_count=3`,
  };
}

/** Every parameter one node runs with (dynamic and its own). */
export function postgresParameters(config: ClusterConfig, layout: PostgresLayout): Record<string, string | number | boolean> {
  return { ...dynamicParameters(config), ...nodeParameters(layout) };
}

/**
 * The synchronous mode Patroni runs in a group of `members` nodes, given the configured one.
 * "quorum" in a two-member group is "on": one standby that must acknowledge every commit is the
 * same guarantee either way, but after a failover Patroni's quorum mode keeps the dead old primary
 * in `synchronous_standby_names` ("ANY 1 (old)", ha.py process_sync_replication_prepromote) until
 * its quorum resolver has stepped it out over the next HA loops, so every commit on the new primary
 * waits 1-2 s more (measured: first write 23.7 s after the kill instead of 22.0 s, ttl 20); "on"
 * promotes with no synchronous standby at once and names the old primary again once it streams.
 */
export function groupSynchronousMode(configured: ClusterConfig["synchronousMode"], members: number): ClusterConfig["synchronousMode"] {
  return configured === "quorum" && members === 2 ? "on" : configured;
}

/**
 * Whether a node runs the on_role_change callback: workers (the after_promote notice) and every
 * member of a quorum-mode group (the HA loop wakeup).
 */
export function hasRoleChangeCallback(config: ClusterConfig, topology: Topology, node: PostgresNode): boolean {
  return node.group > 0 || wakesHaLoop(config, topology, node);
}

/**
 * Whether the callback wakes the node's own HA loop after a promotion: in quorum mode only.
 * Patroni 4.0.7 promotes a quorum-mode member with the dead old primary still counted in
 * synchronous_standby_names ("ANY 2 (old, survivor)" in a group of three, ha.py
 * process_sync_replication_prepromote): its commits wait until its first quorum resolver run
 * (ha.py process_sync_replication), which the HA loop starts only once it sees PostgreSQL as
 * primary. The promote thread (postgresql/__init__.py promote, _wait_promote) polls pg_controldata
 * once, sleeps loop_wait (polling_loop) and returns None, so it wakes no HA loop (async_executor.py
 * run: only a non-None result does): the loop in which the thread finished still found it busy
 * ("updated leader lock during promote"), and the resolver ran in the next one, 2 HA loops after the
 * leader key was taken although PostgreSQL had left recovery within 0.6 s (measured: coordinator
 * commits 2.1 s after the lock). A PATCH /config that changes nothing wakes the HA loop (api.py
 * do_PATCH_config: `ha.wakeup()`; utils.py patch_config: a null value for a key that is absent changes
 * nothing and nothing is written to the DCS): the callback sends one every 0.25 s from loop_wait after
 * the promotion until the resolver has stepped the absent member out. The resolver is Patroni's own,
 * run sooner: the /sync key and synchronous_standby_names change in the same safe order as before.
 * Two-member groups run synchronous_mode "on", which promotes waiting on no one (groupSynchronousMode).
 */
export function wakesHaLoop(config: ClusterConfig, topology: Topology, node: PostgresNode): boolean {
  return groupSynchronousMode(config.synchronousMode, topology.groups[node.group].length) === "quorum";
}

/**
 * Patroni's synchronous_node_count for a quorum-mode group of `members` nodes: every standby.
 * With "ANY 1 of 2" (the default, 1) a standby may take over only with a vote from another
 * standby (ha.py _is_healthiest_node: votes >= the /sync key's quorum), so when the first failover's
 * old primary stays down and the new primary dies before Patroni has stepped the dead node out
 * of the voters (1-2 HA loops after writes resume), the last standby waits for it forever: no
 * leader. With every standby acknowledging, the /sync quorum is 0 and the new primary's
 * synchronous_standby_names ("ANY 1 (survivor)") keeps every acknowledged commit on the survivor,
 * which may then take over alone. The price: a commit waits for the slower standby, and a lost
 * standby holds commits until Patroni's next HA loop drops it (non-strict mode). And after a failover
 * the new primary's own commits wait for its first quorum resolver run (loop_wait after promotion):
 * it promotes with "ANY 2 (dead leader, survivor)" (ha.py process_sync_replication_prepromote counts
 * the /sync leader among the members); rows of distributed tables commit on their workers and do not
 * wait. No setting closes the remaining window (README "Quorum commit"): the survivor waits only when
 * it did not stream from the new primary at two resolver runs, which then commits alone.
 */
export function synchronousNodeCount(members: number): number {
  return Math.max(1, members - 1);
}

export function patroniConfig(
  config: ClusterConfig,
  topology: Topology,
  node: PostgresNode,
  addressing: Addressing,
  layout: PostgresLayout,
  secrets: ClusterSecrets,
): Record<string, unknown> {
  const self = addressing.postgres(node);
  // The file depends on the sizes alone (which replace a container anyway: cpus, shmSize), never on
  // postgresParameters: a parameter change must not change what a container is created from.
  const sized = sizedParameters(config);
  const hba = pgHba(addressing, layout);
  const tls = layout.tls;
  const libpq = clientTlsOptions(layout);
  // "quorum" is left out on purpose: Patroni 4 bootstraps a cluster with a citus section in quorum
  // mode when synchronous_mode is unset (patroni/config.py), and its own validator (4.0.7) rejects
  // the value "quorum", which Patroni accepts at run time. "on"/"off" are written as booleans.
  const mode = groupSynchronousMode(config.synchronousMode, topology.groups[node.group].length);
  const synchronous = mode === "quorum" ? { synchronous_node_count: synchronousNodeCount(topology.groups[node.group].length) } : { synchronous_mode: mode === "on" };
  return {
    // One scope for the whole cluster; Patroni's citus section joins the groups (group 0: coordinator).
    scope: topology.scope,
    namespace: "/service/",
    name: node.name,
    citus: { group: node.group, database: config.database },
    restapi: {
      listen: `${self.listen}:${PORTS.patroniRest}`,
      connect_address: `${self.connect}:${PORTS.patroniRest}`,
      authentication: { username: ROLES.restApi, password: secrets.restApi },
      // HTTPS; Patroni's own calls to other members (workers to the coordinator's /citus) verify
      // against the same cafile. Reads stay open to anyone who trusts the CA; writes need the password.
      ...(tls ? { certfile: tls.certFile, keyfile: tls.keyFile, cafile: tls.caFile } : {}),
    },
    etcd3: {
      hosts: topology.etcd.map((member) => `${addressing.etcd(member).connect}:${PORTS.etcdClient}`),
      // etcd requires a client certificate signed by the cluster CA (--client-cert-auth).
      ...(tls ? { protocol: "https", cacert: tls.caFile, cert: tls.certFile, key: tls.keyFile } : {}),
    },
    bootstrap: {
      dcs: {
        ttl: config.patroniTtl,
        loop_wait: config.patroniLoopWait,
        retry_timeout: config.patroniRetryTimeout,
        maximum_lag_on_failover: 1048576,
        ...synchronous,
        synchronous_mode_strict: false,
        postgresql: {
          use_pg_rewind: true,
          use_slots: true,
          // What a new cluster starts with; the rollout then patches the dynamic config to
          // dynamicParameters(config) (the stack's postgresParameters on top).
          parameters: sized,
        },
      },
      initdb: [{ encoding: "UTF8" }, { locale: "C.UTF-8" }, "data-checksums"],
      // Patroni 3.0's validator requires bootstrap.pg_hba; postgresql.pg_hba below is what applies.
      pg_hba: hba,
      post_bootstrap: layout.postBootstrapScript,
    },
    postgresql: {
      listen: `${self.listen}:${PORTS.postgres}`,
      connect_address: `${self.connect}:${PORTS.postgres}`,
      data_dir: layout.dataDir,
      // Patroni's own connections (superuser: "local all all peer", as Patroni runs as the postgres
      // OS user; replication: password) go over the node's unix socket. Over TCP they would come
      // from 127.0.0.1, which pg_hba, admitting the cluster network only, rejects in a container.
      use_unix_socket: true,
      use_unix_socket_repl: true,
      bin_dir: layout.binDir,
      pgpass: layout.pgpassFile,
      authentication: {
        superuser: { username: ROLES.superuser, password: secrets.superuser, ...libpq },
        replication: { username: ROLES.replication, password: secrets.replication, ...libpq },
        rewind: { username: ROLES.rewind, password: secrets.rewind, ...libpq },
      },
      parameters: nodeParameters(layout),
      pg_hba: hba,
      // A worker tells the coordinator of its promotion as soon as it is out of recovery, so that
      // pg_dist_node follows 1.5-2.5 s sooner than Patroni's own notice; a quorum-mode member wakes
      // its own HA loop once the promote has returned (citus-promote.ts).
      ...(hasRoleChangeCallback(config, topology, node) ? { callbacks: { on_role_change: layout.promoteCallbackScript } } : {}),
      // No two members on one timeline ID with different histories (timeline-guard.ts): a standby and a
      // promotion see every history file the group's members hold (Patroni writes recovery_conf into
      // the recovery parameters of a replica, postgresql/config.py build_recovery_params), and a
      // member whose WAL went past a newer timeline's fork does not promote.
      recovery_conf: { restore_command: restoreCommand(layout.timelineGuardScript) },
      pre_promote: layout.timelineGuardScript,
      // New replicas are cloned at once, not after the next spread checkpoint (~100 s idle here).
      basebackup: [{ checkpoint: "fast" }],
    },
    tags: { nofailover: false, noloadbalance: false, clonefrom: false, nosync: false },
  };
}

export function renderPatroniYml(...args: Parameters<typeof patroniConfig>): string {
  return stringify(patroniConfig(...args), { lineWidth: 0 });
}

/**
 * The post-bootstrap script: creates the application role (password read from a file, never on a
 * command line). Patroni creates the Citus database and the extension itself right after it.
 */
export function renderPostBootstrapScript(config: ClusterConfig, layout: PostgresLayout): string {
  return `#!/bin/sh
# Run once by Patroni on the first leader of a group, with the superuser connection string as $1.
set -eu
# The password is read by psql itself (\\set with backquotes), so it never appears in a process list.
psql "$1" -X -q -v ON_ERROR_STOP=1 -v app_role='${ROLES.app}' -v database='${config.database}' <<'SQL'
\\set app_password \`cat '${layout.appPasswordFile}'\`
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'app_role', :'app_password') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app_role') \\gexec
SQL
`;
}

// ClusterSpec: the validated, defaulted description of one cluster. Pure: no Pulumi imports, so the
// local runner, the render command and the tests use exactly what `pulumi up` uses.
import { createPrivateKey, X509Certificate, type KeyObject } from "node:crypto";
import { Ajv, type ErrorObject } from "ajv";
import { citusImageProblem } from "./citus-image.ts";
import { canonicalCpus } from "./platform/docker-canonical.ts";
import { EXACT_SEARCH_MAX_ROWS } from "../sql/search-plan.ts";

export type PlatformName = "docker" | "kubernetes";
export type VectorExtension = "pgvector" | "ruvector";
export type SynchronousMode = "off" | "on" | "quorum";
export type BenchmarkMode = "quick" | "full" | "stress";
export type KubernetesServiceType = "ClusterIP" | "LoadBalancer" | "NodePort";

/** The flat stack configuration keys (`pulumi config set KEY VALUE`), with their defaults. */
export interface ClusterConfig {
  /** Where the cluster runs. */
  platform: PlatformName;
  /** Cluster name: the Patroni scope and the prefix of every resource and hostname. */
  clusterName: string;
  /** PostgreSQL major version of the database image. */
  postgresMajor: number;
  /** Database that holds the Citus metadata and the application schema. */
  database: string;
  /** PostgreSQL nodes in the Citus coordinator group (1 primary + standbys). */
  coordinatorMembers: number;
  /** Citus worker groups. */
  workerGroups: number;
  /** PostgreSQL nodes in each worker group. */
  workerMembers: number;
  /** etcd members (odd, so that a majority survives a loss). */
  etcdMembers: number;
  /** Citus shards of each distributed table. */
  shardCount: number;
  /** Vector extension: pgvector, or RuVector. */
  vectorExtension: VectorExtension;
  /** Dimension of every embedding column. */
  embeddingDimensions: number;
  /** HNSW graph degree. */
  hnswM: number;
  /** HNSW candidate list size while building. */
  hnswEfConstruction: number;
  /** HNSW candidate list size while searching (caps the results of one scan). */
  hnswEfSearch: number;
  /** k of the k-nearest-neighbour searches the benchmark and the application run. */
  searchK: number;
  /**
   * Rows at most in the namespaces of one search for `search_memory` to search them exactly; above
   * it, HNSW (sql/search-plan.ts). 0: always HNSW.
   */
  searchExactMaxRows: number;
  /** PgBouncer server connections per database/user pair. */
  poolSize: number;
  /** Replicas further behind their primary than this (bytes of WAL) leave HAProxy's read-only pool. */
  readOnlyMaxLagBytes: number;
  /** PgBouncer client connections at most. */
  maxClientConnections: number;
  /** Patroni leader key TTL, seconds. */
  patroniTtl: number;
  /** Patroni HA loop period, seconds. */
  patroniLoopWait: number;
  /** Patroni timeout for DCS and PostgreSQL operations, seconds. */
  patroniRetryTimeout: number;
  /** Patroni synchronous replication: off, on (one synchronous standby), or quorum (Patroni 4+). */
  synchronousMode: SynchronousMode;
  /**
   * Base image of the database image: a Citus image of the PostgreSQL major (Debian based). A
   * `citusdata/citus` tag is checked against `postgresMajor` (see components/citus-image.ts).
   */
  databaseBaseImage: string;
  /** Image for etcd (run with an explicit command). */
  etcdImage: string;
  /** Image for HAProxy (run with an explicit command). */
  haproxyImage: string;
  /** Image for PgBouncer (run with an explicit command). */
  pgbouncerImage: string;
  /** Image for Prometheus (run with an explicit command). */
  prometheusImage: string;
  /** Image for Grafana (run by its own /run.sh, which reads `__FILE` variables). */
  grafanaImage: string;
  /** Image for postgres_exporter, one container per PostgreSQL node. */
  postgresExporterImage: string;
  /** Image for the PgBouncer exporter. */
  pgbouncerExporterImage: string;
  /** CPUs for each PostgreSQL node (docker: NanoCPUs; kubernetes: requests and limits). */
  databaseCpus: number;
  /** Memory for each PostgreSQL node, MiB. */
  databaseMemoryMb: number;
  /** Subnet of the cluster network; pg_hba admits only this network. */
  networkSubnet: string;
  /** Host port PgBouncer is published on (docker). */
  pgbouncerPort: number;
  /** Host port of HAProxy's read-write listener (docker). */
  haproxyReadWritePort: number;
  /** Host port of HAProxy's read-only listener (docker). */
  haproxyReadOnlyPort: number;
  /** Host port Prometheus is published on (docker). */
  prometheusPort: number;
  /** Host port Grafana is published on (docker). */
  grafanaPort: number;
  /**
   * docker: the host address Prometheus's and Grafana's ports are bound to. 127.0.0.1 (default): only
   * the Docker host itself reaches them (neither asks who is looking: Prometheus has no login, and
   * Grafana's would be the only guard); 0.0.0.0 publishes them on every interface.
   */
  monitoringPublishAddress: string;
  /**
   * docker: the host name (or IPv4 address) clients use to reach the published ports, in every
   * endpoint of the stack outputs: the Docker host's name when DOCKER_HOST points at another machine.
   */
  endpointHost: string;
  /**
   * docker: seconds a container with data (PostgreSQL, etcd, ...) has to stop cleanly after SIGTERM
   * before it is killed, whoever stops it: Pulumi replacing or deleting it (destroyGraceSeconds), or
   * `docker stop`, a restart of dockerd or of the host (stopTimeout).
   */
  dockerStopGraceSeconds: number;
  /**
   * Keep the data volumes (docker volumes, kubernetes claims and their namespace) when Pulumi deletes
   * them: `pulumi destroy`, fewer members or groups. false: they are deleted with the stack.
   */
  retainDataOnDestroy: boolean;
  /** Kubernetes namespace (kubernetes platform only). */
  kubernetesNamespace: string;
  /**
   * The database image, pre-built from images/ and pushed where the cluster can pull it. Required on
   * kubernetes (the kubernetes platform builds no image); the docker platform builds its own.
   */
  databaseImage: string;
  /**
   * kubernetes: the deploy-steps image (images/deploy-steps.Dockerfile: databaseImage plus Node.js and
   * this project's code), pre-built and pushed. The schema migrations and the post-deploy benchmark
   * run in it as Jobs inside the cluster. Required on kubernetes; unused on docker.
   */
  deployStepsImage: string;
  /** Size of each persistent volume (kubernetes: every StatefulSet member's claim). */
  kubernetesVolumeSize: string;
  /** StorageClass of the persistent volumes; empty: the cluster's default class. */
  kubernetesStorageClass: string;
  /** The pod network (CIDR) on kubernetes: pg_hba admits only it there (networkSubnet is docker's). */
  kubernetesPodCidr: string;
  /**
   * kubernetes: ClusterIP publishes nothing outside the cluster; LoadBalancer or NodePort add a
   * `<member>-public` Service for each published port (HAProxy, PgBouncer, Prometheus, Grafana).
   */
  kubernetesServiceType: KubernetesServiceType;
  /**
   * kubernetes: comma-separated CIDRs admitted to the published Services (loadBalancerSourceRanges and
   * the NetworkPolicies); required unless kubernetesServiceType is ClusterIP.
   */
  kubernetesSourceRanges: string;
  /**
   * More names (DNS names or IPv4 addresses, comma-separated) clients reach the router by, for its
   * certificate and the coordinator nodes' (verify-full checks the name dialled): a Kubernetes
   * LoadBalancer's DNS name or address, a DNS alias of the Docker host. Empty: the platform's own names.
   */
  tlsRouterNames: string;
  /** kubernetes: pods of HAProxy and of PgBouncer each (spread over nodes, with a disruption budget). */
  kubernetesRouterReplicas: number;
  /** kubernetes: numeric user and group of `postgres` in databaseImage (the Citus image's: 999); pods run as them. */
  kubernetesPostgresUid: number;
  kubernetesPostgresGid: number;
  /** kubernetes: seconds a PostgreSQL pod has to shut down cleanly before it is killed. */
  kubernetesTerminationGraceSeconds: number;
  /** Run the benchmark suite after `pulumi up` creates or updates the schema. */
  benchmarkEnabled: boolean;
  /** Benchmark mode of the post-deploy run. */
  benchmarkMode: BenchmarkMode;
  /** Any new value runs the post-deploy benchmark again, without a schema change. */
  benchmarkRunId: string;
  /**
   * PostgreSQL parameters over the sized defaults (components/render/patroni.ts), e.g.
   * `{ work_mem: "16MB", log_min_duration_statement: 500 }`: applied through Patroni's dynamic
   * configuration on a running cluster, with a rolling restart when one needs it
   * (components/rollout/). Parameters Patroni or Citus manage are refused (MANAGED_PARAMETERS).
   */
  postgresParameters: Record<string, string | number | boolean>;
}

export const DEFAULT_CONFIG: ClusterConfig = {
  platform: "docker",
  clusterName: "dpc",
  postgresMajor: 17,
  database: "vectors",
  coordinatorMembers: 3,
  workerGroups: 6,
  workerMembers: 2,
  etcdMembers: 3,
  shardCount: 12,
  vectorExtension: "pgvector",
  embeddingDimensions: 384,
  hnswM: 16,
  hnswEfConstruction: 64,
  hnswEfSearch: 40,
  searchK: 10,
  // Measured on 2 cores at 384 dimensions (sql/search-plan.ts, README).
  searchExactMaxRows: EXACT_SEARCH_MAX_ROWS,
  poolSize: 25,
  // 1 MiB, Patroni's maximum_lag_on_failover here: a replica too far behind to be promoted is too
  // stale to read from.
  readOnlyMaxLagBytes: 1048576,
  maxClientConnections: 1000,
  // Node-loss failover takes the leader key's ttl plus about a second (see README, "Failover"): a
  // primary that cannot reach etcd or PostgreSQL for retry_timeout seconds steps down, so shorter
  // values trade stability for speed.
  // Patroni's documented limits (ttl >= 20, loop_wait >= 1, retry_timeout >= 3, loop_wait +
  // 2 * retry_timeout <= ttl); ttl is the floor of node-loss failover, so it sits at the minimum.
  patroniTtl: 20,
  patroniLoopWait: 1,
  patroniRetryTimeout: 5,
  // Any one standby's acknowledgement commits, and any acknowledging standby may be promoted: no
  // leaderless window after a failover (Patroni 4; "on" names one synchronous standby).
  synchronousMode: "quorum",
  databaseBaseImage: "citusdata/citus:13.0.3",
  etcdImage: "quay.io/coreos/etcd:v3.5.17",
  haproxyImage: "haproxy:2.9",
  pgbouncerImage: "edoburu/pgbouncer:v1.23.1-p2",
  prometheusImage: "prom/prometheus:v3.5.0",
  grafanaImage: "grafana/grafana:11.6.0",
  postgresExporterImage: "quay.io/prometheuscommunity/postgres-exporter:v0.17.1",
  pgbouncerExporterImage: "prometheuscommunity/pgbouncer-exporter:v0.12.1",
  databaseCpus: 1,
  databaseMemoryMb: 2048,
  networkSubnet: "172.28.0.0/16",
  pgbouncerPort: 6432,
  haproxyReadWritePort: 5000,
  haproxyReadOnlyPort: 5001,
  prometheusPort: 9090,
  grafanaPort: 3000,
  monitoringPublishAddress: "127.0.0.1",
  endpointHost: "localhost",
  dockerStopGraceSeconds: 300,
  retainDataOnDestroy: true,
  kubernetesNamespace: "dpc",
  databaseImage: "",
  deployStepsImage: "",
  kubernetesVolumeSize: "10Gi",
  kubernetesStorageClass: "",
  kubernetesPodCidr: "10.0.0.0/8",
  kubernetesServiceType: "ClusterIP",
  kubernetesSourceRanges: "",
  tlsRouterNames: "",
  kubernetesRouterReplicas: 2,
  kubernetesPostgresUid: 999,
  kubernetesPostgresGid: 999,
  kubernetesTerminationGraceSeconds: 300,
  benchmarkEnabled: true,
  benchmarkMode: "quick",
  benchmarkRunId: "",
  postgresParameters: {},
};

/**
 * Parameters `postgresParameters` may not set, and why: Patroni sets them from its own config
 * (patroni/postgresql/config.py CMDLINE_OPTIONS with a false validator, the recovery parameters,
 * synchronous_standby_names), Citus needs them as Patroni's citus section sets them
 * (shared_preload_libraries, wal_level logical, citus.local_hostname, max_prepared_transactions),
 * or the cluster depends on them (pg_rewind needs wal_log_hints; scram-sha-256 only).
 */
export const MANAGED_PARAMETERS: Record<string, string> = {
  listen_addresses: "Patroni sets it from postgresql.listen",
  port: "Patroni sets it from postgresql.listen",
  cluster_name: "Patroni sets it from the scope",
  hot_standby: "Patroni keeps it on",
  wal_level: "Patroni sets it to logical for Citus",
  shared_preload_libraries: "Patroni puts citus first in it",
  "citus.local_hostname": "Patroni sets it for Citus",
  max_prepared_transactions: "Patroni sizes it for Citus' two-phase commits",
  unix_socket_directories: "each node's own, set by the rendering",
  "citus.node_conninfo": "each node's own (its CA file), set by the rendering",
  ssl: "TLS is on everywhere, set by the rendering",
  ssl_cert_file: "each node's own certificate, set by the rendering",
  ssl_key_file: "each node's own key, set by the rendering",
  ssl_ca_file: "the cluster CA, set by the rendering",
  data_directory: "Patroni's postgresql.data_dir",
  config_file: "Patroni writes postgresql.conf itself",
  hba_file: "Patroni writes pg_hba.conf from postgresql.pg_hba",
  ident_file: "Patroni writes pg_ident.conf",
  primary_conninfo: "Patroni manages replication",
  primary_slot_name: "Patroni manages replication slots",
  restore_command: "a recovery parameter Patroni manages",
  recovery_target: "a recovery parameter Patroni manages",
  recovery_target_timeline: "a recovery parameter Patroni manages",
  recovery_min_apply_delay: "a recovery parameter Patroni manages",
  promote_trigger_file: "a recovery parameter Patroni manages",
  synchronous_standby_names: "Patroni sets it from synchronousMode",
  wal_log_hints: "pg_rewind needs it on",
  password_encryption: "the cluster uses scram-sha-256 only",
};

/** A PostgreSQL parameter name: lower case, optionally with one extension prefix (citus.x, hnsw.y). */
const PARAMETER_NAME = /^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$/;

/** PostgreSQL majors RuVector builds for (pgrx). */
export const RUVECTOR_POSTGRES_MAJORS = [14, 15, 16, 17];
/** PostgreSQL majors this project supports at all. */
export const POSTGRES_MAJORS = [14, 15, 16, 17, 18];
/** pgvector's HNSW limit for the `vector` type. */
export const MAX_HNSW_DIMENSIONS = 2000;

const int = (minimum: number, maximum: number) => ({ type: "integer", minimum, maximum });
const port = int(1, 65535);
const cidr = { type: "string", pattern: "^\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}/\\d{1,2}$" };

// The JSON schema of the stack configuration. Cross-field rules live in crossFieldErrors below.
const CONFIG_SCHEMA = {
  type: "object",
  additionalProperties: false,
  properties: {
    platform: { type: "string", enum: ["docker", "kubernetes"] },
    clusterName: { type: "string", pattern: "^[a-z][a-z0-9-]{0,19}$" },
    postgresMajor: { type: "integer", enum: POSTGRES_MAJORS },
    database: { type: "string", pattern: "^[a-z_][a-z0-9_]{0,62}$" },
    coordinatorMembers: int(1, 9),
    workerGroups: int(1, 64),
    workerMembers: int(1, 9),
    etcdMembers: int(1, 9),
    shardCount: int(1, 1024),
    vectorExtension: { type: "string", enum: ["pgvector", "ruvector"] },
    embeddingDimensions: int(1, 16000),
    hnswM: int(2, 100),
    hnswEfConstruction: int(4, 1000),
    hnswEfSearch: int(1, 1000),
    searchK: int(1, 1000),
    searchExactMaxRows: int(0, 1000000),
    poolSize: int(1, 10000),
    readOnlyMaxLagBytes: int(0, 1099511627776),
    maxClientConnections: int(1, 100000),
    // Patroni's documented minimums: 4.x raises a smaller ttl to 20 by itself.
    patroniTtl: int(20, 3600),
    patroniLoopWait: int(1, 600),
    patroniRetryTimeout: int(3, 600),
    synchronousMode: { type: "string", enum: ["off", "on", "quorum"] },
    databaseBaseImage: { type: "string", minLength: 1 },
    etcdImage: { type: "string", minLength: 1 },
    haproxyImage: { type: "string", minLength: 1 },
    pgbouncerImage: { type: "string", minLength: 1 },
    prometheusImage: { type: "string", minLength: 1 },
    grafanaImage: { type: "string", minLength: 1 },
    postgresExporterImage: { type: "string", minLength: 1 },
    pgbouncerExporterImage: { type: "string", minLength: 1 },
    databaseCpus: { type: "number", exclusiveMinimum: 0, maximum: 256 },
    databaseMemoryMb: int(256, 1048576),
    networkSubnet: cidr,
    pgbouncerPort: port,
    haproxyReadWritePort: port,
    haproxyReadOnlyPort: port,
    prometheusPort: port,
    grafanaPort: port,
    monitoringPublishAddress: { type: "string", minLength: 1 },
    // A DNS name or an IPv4 address; checked in crossFieldErrors.
    endpointHost: { type: "string", minLength: 1 },
    dockerStopGraceSeconds: int(30, 3600),
    retainDataOnDestroy: { type: "boolean" },
    kubernetesNamespace: { type: "string", pattern: "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$" },
    // Empty, or an image reference without whitespace.
    databaseImage: { type: "string", pattern: "^(\\S+)?$" },
    deployStepsImage: { type: "string", pattern: "^(\\S+)?$" },
    // A Kubernetes quantity of bytes (binary or decimal suffix).
    kubernetesVolumeSize: { type: "string", pattern: "^[1-9][0-9]*(\\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$" },
    // Empty, or a StorageClass name (a DNS subdomain).
    kubernetesStorageClass: { type: "string", pattern: "^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?)?$" },
    kubernetesPodCidr: cidr,
    kubernetesServiceType: { type: "string", enum: ["ClusterIP", "LoadBalancer", "NodePort"] },
    // Empty, or CIDRs separated by commas (each checked in crossFieldErrors).
    tlsRouterNames: { type: "string" },
    kubernetesSourceRanges: { type: "string", pattern: "^( *\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}/\\d{1,2} *(, *\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}/\\d{1,2} *)*)?$" },
    kubernetesRouterReplicas: int(1, 10),
    kubernetesPostgresUid: int(1, 2147483647),
    kubernetesPostgresGid: int(1, 2147483647),
    kubernetesTerminationGraceSeconds: int(30, 3600),
    benchmarkEnabled: { type: "boolean" },
    benchmarkMode: { type: "string", enum: ["quick", "full", "stress"] },
    benchmarkRunId: { type: "string", maxLength: 100 },
    // Names and values checked in crossFieldErrors (names, managed parameters, line breaks).
    postgresParameters: { type: "object", additionalProperties: { type: ["string", "number", "boolean"] } },
  },
} as const;

const ajv = new Ajv({ allErrors: true, coerceTypes: true, useDefaults: false, strict: true, allowUnionTypes: true });
const validateShape = ajv.compile(CONFIG_SCHEMA);

/** Invalid configuration: every problem at once, each naming the key, the value given and what is allowed. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid cluster configuration (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n  - ${problems.join("\n  - ")}`);
    this.name = "ConfigError";
  }
}

function describeSchemaError(error: ErrorObject, given: Record<string, unknown>): string {
  if (error.keyword === "additionalProperties") {
    const key = String(error.params.additionalProperty);
    return `${key}: unknown configuration key; allowed keys: ${Object.keys(CONFIG_SCHEMA.properties).join(", ")}`;
  }
  const [key, ...rest] = error.instancePath.replace(/^\//, "").split("/");
  if (key === "postgresParameters") {
    const value = rest.length > 0 ? (given[key] as Record<string, unknown>)?.[rest.join("/")] : given[key];
    return `postgresParameters${rest.length > 0 ? `.${rest.join("/")}` : ""}: got ${JSON.stringify(value)}; allowed: ${rest.length > 0 ? "a string, number or boolean" : "a map of PostgreSQL parameter names to values"}`;
  }
  const value = JSON.stringify(given[key]);
  const rule = CONFIG_SCHEMA.properties[key as keyof typeof CONFIG_SCHEMA.properties] as Record<string, unknown>;
  let allowed: string;
  if (rule.enum) allowed = `one of ${(rule.enum as unknown[]).join(", ")}`;
  else if (rule.pattern) allowed = `a string matching ${rule.pattern}`;
  else if (rule.type === "integer") allowed = `an integer from ${rule.minimum} to ${rule.maximum}`;
  else if (rule.type === "number") allowed = `a number above ${rule.exclusiveMinimum ?? rule.minimum} and at most ${rule.maximum}`;
  else if (rule.type === "boolean") allowed = "true or false";
  else if (rule.maxLength !== undefined) allowed = `a string of at most ${rule.maxLength} characters`;
  else allowed = `a non-empty ${rule.type}`;
  return `${key}: got ${value}; allowed: ${allowed}`;
}

function isValidSubnet(subnet: string): boolean {
  const [address, prefix] = subnet.split("/");
  return address.split(".").every((octet) => Number(octet) <= 255) && Number(prefix) >= 8 && Number(prefix) <= 28;
}

function isValidCidr(cidr: string): boolean {
  const [address, prefix] = cidr.split("/");
  return address.split(".").every((octet) => Number(octet) <= 255) && Number(prefix) <= 32;
}

/** A DNS name (letters, digits, hyphens; dot-separated labels of up to 63) or an IPv4 address. */
export function isHostName(host: string): boolean {
  const label = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
  if (host.length > 253 || !host.split(".").every((part) => label.test(part))) return false;
  // All-numeric: must then be a dotted IPv4 address.
  return /[A-Za-z]/.test(host) || (/^\d{1,3}(\.\d{1,3}){3}$/.test(host) && host.split(".").every((octet) => Number(octet) <= 255));
}

function crossFieldErrors(c: ClusterConfig): string[] {
  const errors: string[] = [];
  // Registered in the Docker provider's read-back form; a value without one would replace every
  // database container on every `pulumi up` (docker-canonical.ts).
  if (canonicalCpus(c.databaseCpus) === undefined) {
    errors.push(`databaseCpus: got ${c.databaseCpus}; allowed: a number of CPUs the Docker provider reads back as the same number (at most 9 decimals; not, e.g., 0.05, which it reads back as "0.1")`);
  }
  if (!isHostName(c.endpointHost)) {
    errors.push(`endpointHost: got ${JSON.stringify(c.endpointHost)}; allowed: a DNS name or an IPv4 address (the Docker host as clients reach it, e.g. db.example.com)`);
  } else if (c.platform === "kubernetes" && c.endpointHost !== DEFAULT_CONFIG.endpointHost) {
    errors.push(`endpointHost: got ${JSON.stringify(c.endpointHost)} with platform "kubernetes"; allowed: only with platform "docker" (kubernetes publishes through kubernetesServiceType)`);
  }
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(c.monitoringPublishAddress) || c.monitoringPublishAddress.split(".").some((octet) => Number(octet) > 255)) {
    errors.push(`monitoringPublishAddress: got ${JSON.stringify(c.monitoringPublishAddress)}; allowed: an IPv4 address of the Docker host, e.g. 127.0.0.1 (the host only, the default) or 0.0.0.0 (every interface)`);
  }
  const badRouterName = tlsRouterNameList(c.tlsRouterNames).find((name) => !isHostName(name));
  if (badRouterName !== undefined) {
    errors.push(`tlsRouterNames: got ${JSON.stringify(badRouterName)}; allowed: DNS names or IPv4 addresses separated by commas (e.g. "db.example.com,203.0.113.10")`);
  }
  if (c.etcdMembers % 2 === 0) {
    errors.push(`etcdMembers: got ${c.etcdMembers}; allowed: an odd number (an even member count tolerates no more failures than one fewer)`);
  }
  if (c.vectorExtension === "ruvector" && !RUVECTOR_POSTGRES_MAJORS.includes(c.postgresMajor)) {
    errors.push(`postgresMajor: got ${c.postgresMajor} with vectorExtension "ruvector"; allowed: ${RUVECTOR_POSTGRES_MAJORS.join(", ")} (RuVector builds only for these)`);
  }
  const citusProblem = citusImageProblem(c.postgresMajor, c.databaseBaseImage);
  if (citusProblem) errors.push(citusProblem);
  if (c.hnswEfSearch < c.searchK) {
    errors.push(`hnswEfSearch: got ${c.hnswEfSearch} with searchK ${c.searchK}; allowed: at least searchK (an HNSW scan returns at most ef_search rows)`);
  }
  if (c.hnswEfConstruction < 2 * c.hnswM) {
    // pgvector's hnswbuild refuses it: "ef_construction must be greater than or equal to 2 * m".
    errors.push(`hnswEfConstruction: got ${c.hnswEfConstruction} with hnswM ${c.hnswM}; allowed: at least 2 * hnswM (${2 * c.hnswM}), as pgvector requires to build the index`);
  }
  if (c.vectorExtension === "pgvector" && c.embeddingDimensions > MAX_HNSW_DIMENSIONS) {
    errors.push(`embeddingDimensions: got ${c.embeddingDimensions}; allowed: at most ${MAX_HNSW_DIMENSIONS} with pgvector HNSW indexes`);
  }
  if (c.patroniLoopWait + 2 * c.patroniRetryTimeout > c.patroniTtl) {
    errors.push(`patroniTtl: got ${c.patroniTtl} with patroniLoopWait ${c.patroniLoopWait} and patroniRetryTimeout ${c.patroniRetryTimeout}; allowed: at least loop_wait + 2 * retry_timeout (${c.patroniLoopWait + 2 * c.patroniRetryTimeout}), as Patroni requires`);
  }
  if (c.synchronousMode !== "off" && c.coordinatorMembers < 2) {
    errors.push(`synchronousMode: got "${c.synchronousMode}" with coordinatorMembers ${c.coordinatorMembers}; allowed: "off" for single-member groups (a synchronous standby needs a second member)`);
  }
  for (const key of ["networkSubnet", "kubernetesPodCidr"] as const) {
    if (!isValidSubnet(c[key])) errors.push(`${key}: got "${c[key]}"; allowed: an IPv4 CIDR with octets up to 255 and a prefix from /8 to /28`);
  }
  const ranges = c.kubernetesSourceRanges.split(",").map((r) => r.trim()).filter((r) => r !== "");
  const badRange = ranges.find((r) => !isValidCidr(r));
  if (badRange) {
    errors.push(`kubernetesSourceRanges: got "${badRange}"; allowed: IPv4 CIDRs with octets up to 255 and a prefix from /0 to /32, separated by commas`);
  }
  if (c.kubernetesServiceType !== "ClusterIP" && ranges.length === 0) {
    errors.push(`kubernetesSourceRanges: got "" with kubernetesServiceType "${c.kubernetesServiceType}"; allowed: the CIDRs that may reach the published Services (e.g. "203.0.113.0/24"): nothing is published to everyone`);
  }
  if (c.platform === "kubernetes" && c.databaseImage === "") {
    errors.push(`databaseImage: got "" with platform "kubernetes"; allowed: a pre-built image reference the cluster can pull (build images/ and push it; the kubernetes platform builds no image)`);
  }
  if (c.platform === "kubernetes" && c.deployStepsImage === "") {
    errors.push(`deployStepsImage: got "" with platform "kubernetes"; allowed: a pre-built image reference the cluster can pull (images/deploy-steps.Dockerfile: the schema migrations and the benchmark run in it, inside the cluster)`);
  }
  const ports = {
    pgbouncerPort: c.pgbouncerPort,
    haproxyReadWritePort: c.haproxyReadWritePort,
    haproxyReadOnlyPort: c.haproxyReadOnlyPort,
    prometheusPort: c.prometheusPort,
    grafanaPort: c.grafanaPort,
  };
  const seen = new Map<number, string>();
  for (const [key, value] of Object.entries(ports)) {
    const other = seen.get(value);
    if (other) errors.push(`${key}: got ${value}, the same as ${other}; allowed: a port no other published listener uses`);
    seen.set(value, key);
  }
  for (const [name, value] of Object.entries(c.postgresParameters ?? {})) {
    if (!PARAMETER_NAME.test(name)) {
      errors.push(`postgresParameters.${name}: not a PostgreSQL parameter name; allowed: lower-case letters, digits and _, with at most one extension prefix (e.g. work_mem, hnsw.ef_search)`);
    } else if (MANAGED_PARAMETERS[name]) {
      errors.push(`postgresParameters.${name}: got ${JSON.stringify(value)}; allowed: not this parameter (${MANAGED_PARAMETERS[name]})`);
    } else if (typeof value === "string" && /[\n\r\0]/.test(value)) {
      errors.push(`postgresParameters.${name}: got ${JSON.stringify(value)}; allowed: a value without line breaks`);
    }
  }
  if (c.poolSize > c.maxClientConnections) {
    errors.push(`poolSize: got ${c.poolSize} with maxClientConnections ${c.maxClientConnections}; allowed: at most maxClientConnections`);
  }
  return errors;
}

/**
 * Validates raw stack configuration (strings, as Pulumi stores them, or typed values) and fills in
 * defaults. Throws one ConfigError listing every problem.
 */
export function parseClusterConfig(raw: Record<string, unknown>): ClusterConfig {
  const given: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (value !== undefined && value !== null) given[key] = value;
  }
  // Pulumi hands structured config to the program as JSON text; a stack file parsed as YAML gives the map.
  if (typeof given.postgresParameters === "string") {
    try {
      given.postgresParameters = JSON.parse(given.postgresParameters);
    } catch {
      throw new ConfigError([`postgresParameters: got ${JSON.stringify(given.postgresParameters)}; allowed: a map of PostgreSQL parameter names to values (JSON or YAML)`]);
    }
  }
  const merged: Record<string, unknown> = { ...DEFAULT_CONFIG, ...given };
  const schemaErrors = validateShape(merged) ? [] : (validateShape.errors ?? []);
  // Cross-field rules run even when some fields failed the schema, so that every problem is reported
  // at once: invalid fields take their defaults for this, and a rule that names one is left out.
  const invalidKeys = schemaErrors.map((e) => e.instancePath.replace(/^\//, "").split("/")[0]).filter((key) => key in DEFAULT_CONFIG);
  const checked = { ...merged } as unknown as ClusterConfig;
  for (const key of invalidKeys) Object.assign(checked, { [key]: DEFAULT_CONFIG[key as keyof ClusterConfig] });
  const crossFieldProblems = crossFieldErrors(checked).filter(
    (problem) => !invalidKeys.some((key) => new RegExp(`\\b${key}\\b`).test(problem)),
  );
  const problems = [...schemaErrors.map((e) => describeSchemaError(e, given)), ...crossFieldProblems];
  if (problems.length > 0) throw new ConfigError(problems);
  return merged as unknown as ClusterConfig;
}

// ---------------------------------------------------------------------------------------------
// Topology: which nodes exist. Addresses come from the platform (container names, pod DNS names,
// loopback addresses), so the same topology renders for every platform.

export interface PostgresNode {
  /** Unique node name: the Patroni member name and the hostname stem. */
  name: string;
  /** Citus group: 0 is the coordinator, 1..N the workers. */
  group: number;
  /** Index of the member within its group. */
  member: number;
}

export interface EtcdMember {
  name: string;
  index: number;
}

export interface Topology {
  scope: string;
  groups: PostgresNode[][];
  etcd: EtcdMember[];
  routerName: string;
}

export function groupName(scope: string, group: number): string {
  return group === 0 ? `${scope}-coordinator` : `${scope}-worker${group}`;
}

export function planTopology(config: ClusterConfig): Topology {
  const scope = config.clusterName;
  const groups: PostgresNode[][] = [];
  for (let group = 0; group <= config.workerGroups; group++) {
    const members = group === 0 ? config.coordinatorMembers : config.workerMembers;
    groups.push(
      Array.from({ length: members }, (_, member) => ({ name: `${groupName(scope, group)}-${member}`, group, member })),
    );
  }
  const etcd = Array.from({ length: config.etcdMembers }, (_, index) => ({ name: `${scope}-etcd-${index}`, index }));
  return { scope, groups, etcd, routerName: `${scope}-router` };
}

/** Secret config keys of a CA the user supplies (`pulumi config set --secret`); both or neither. */
export const TLS_CA_CONFIG_KEYS = { cert: "tlsCaCertificate", key: "tlsCaKey" } as const;

/**
 * Problems with a user-supplied cluster CA (PEM texts from secret config), each naming the key and
 * what is allowed; never the key's value. Both absent: none (the program creates a CA). Checks:
 * both given, the certificate parses and is a CA (basicConstraints CA:TRUE), still valid at `now`,
 * and the key parses and belongs to it.
 */
export function certificateAuthorityProblems(cert: string | undefined, key: string | undefined, now: Date = new Date()): string[] {
  const { cert: certKey, key: keyKey } = TLS_CA_CONFIG_KEYS;
  if (cert === undefined && key === undefined) return [];
  if (cert === undefined || key === undefined) {
    const missing = cert === undefined ? certKey : keyKey;
    const given = cert === undefined ? keyKey : certKey;
    return [`${missing}: missing while ${given} is set; allowed: both (a CA certificate and its private key, PEM) or neither (the program creates a CA)`];
  }
  let parsed: X509Certificate;
  try {
    parsed = new X509Certificate(cert);
  } catch {
    return [`${certKey}: got a value that is not a PEM X.509 certificate; allowed: a CA certificate in PEM ("-----BEGIN CERTIFICATE-----")`];
  }
  const problems: string[] = [];
  if (!parsed.ca) problems.push(`${certKey}: got a certificate for ${JSON.stringify(parsed.subject)} that is not a CA (basicConstraints CA:FALSE or absent); allowed: a CA certificate, which can sign the cluster's certificates`);
  if (Date.parse(parsed.validTo) <= now.getTime()) problems.push(`${certKey}: got a certificate that expired on ${parsed.validTo}; allowed: a CA certificate valid now`);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    return [...problems, `${keyKey}: got a value that is not a PEM private key; allowed: the CA certificate's private key in PEM (PKCS#8 or PKCS#1, unencrypted)`];
  }
  if (privateKey.asymmetricKeyType !== "rsa") problems.push(`${keyKey}: got a ${privateKey.asymmetricKeyType} key; allowed: an RSA key (the cluster's certificates are signed with RSA and SHA-256)`);
  else if (!parsed.checkPrivateKey(privateKey)) problems.push(`${keyKey}: got a key that does not belong to ${certKey}; allowed: the private key of that certificate`);
  return problems;
}

/** tlsRouterNames as a list (spaces and empty items dropped). */
export function tlsRouterNameList(names: string): string[] {
  return names.split(",").map((name) => name.trim()).filter((name) => name.length > 0);
}

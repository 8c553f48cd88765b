// The Pulumi program: stack config -> validated spec -> one Cluster component -> stack outputs.
// Invalid config throws here, listing every problem, before any resource is registered.
import * as pulumi from "@pulumi/pulumi";
import { parseClusterConfig } from "./components/spec.ts";
import { GRAFANA_ADMIN_PASSWORD_KEY, MONITOR_PASSWORD_KEY, PASSWORD_CONFIG_KEYS, TLS_CA_KEYS, projectConfig } from "./components/stack-config.ts";
import { checkPlatformImplemented } from "./components/platform/index.ts";
import { Cluster, PASSWORD_NAMES, type ClusterArgs } from "./components/cluster.ts";
import { DataIdentity } from "./components/data-identity.ts";

const config = parseClusterConfig(projectConfig(pulumi.runtime.allConfig(), pulumi.getProject()));
checkPlatformImplemented(config);

const stackConfig = new pulumi.Config();
const passwords: ClusterArgs["passwords"] = Object.fromEntries(
  PASSWORD_NAMES.map((name) => [name, stackConfig.getSecret(PASSWORD_CONFIG_KEYS[name])]),
);

// First, and a dependency of every process: refuses (in its check, before anything changes) a
// clusterName, platform, namespace or PostgreSQL major other than the deployed one.
const dataIdentity = new DataIdentity(config);

const cluster = new Cluster(
  config.clusterName,
  {
    config,
    passwords,
    grafanaAdminPassword: stackConfig.getSecret(GRAFANA_ADMIN_PASSWORD_KEY),
    monitorPassword: stackConfig.getSecret(MONITOR_PASSWORD_KEY),
    // A CA of the user's (both keys, or neither: the program creates one); validated before use.
    certificateAuthority: { cert: stackConfig.getSecret(TLS_CA_KEYS.cert), key: stackConfig.getSecret(TLS_CA_KEYS.key) },
  },
  { dependsOn: [dataIdentity] },
);

/** postgresql:// URL of the application role through PgBouncer (secret). */
export const appConnectionString = cluster.appConnectionString;
export const readWriteEndpoint = cluster.readWriteEndpoint;
export const readOnlyEndpoint = cluster.readOnlyEndpoint;
export const pgbouncerEndpoint = cluster.pgbouncerEndpoint;
export const etcdEndpoints = cluster.etcdEndpoints;
export const membersPerGroup = cluster.membersPerGroup;
/** Id of the last migration applied through the coordinator. */
export const schemaVersion = cluster.schemaVersion;
/** What the last rolling change did per group: parameters, restarts, pods deleted (kubernetes), switchovers and their pause. */
export const rolloutReport = cluster.rolloutReport;
/** The post-deploy benchmark's summary (absent when benchmarkEnabled is false). */
export const benchmarkSummary = cluster.benchmarkSummary;
export const prometheusEndpoint = cluster.prometheusEndpoint;
export const grafanaEndpoint = cluster.grafanaEndpoint;
/** Grafana's admin password (secret). */
export const grafanaAdminPassword = cluster.grafanaAdminPassword;
/** The cluster CA's certificate (PEM, not secret): clients verify every server with it (sslrootcert). */
export const caCertificate = cluster.caCertificate;
/**
 * The application's URL through PgBouncer with sslmode=verify-full (secret). The client needs the CA
 * as its root certificate: `pulumi stack output caCertificate > ca.crt`, then PGSSLROOTCERT=ca.crt.
 */
export const appConnectionStringVerifyFull = cluster.appConnectionStringVerifyFull;

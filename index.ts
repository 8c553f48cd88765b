// The Pulumi program: stack config -> validated spec -> one Cluster component -> stack outputs.
// Invalid config throws here, listing every problem, before any resource is registered.
import * as pulumi from "@pulumi/pulumi";
import { parseClusterConfig } from "./components/spec.ts";
import { GRAFANA_ADMIN_PASSWORD_KEY, PASSWORD_CONFIG_KEYS, projectConfig } from "./components/stack-config.ts";
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

// Monitoring: Prometheus (scrape config, alert rules), a postgres_exporter beside every PostgreSQL
// node, a PgBouncer exporter, and Grafana with its datasource and dashboard provisioned. Every file
// comes from the monitoring/ renderers, addressed like the rest of the cluster (containerAddressing).
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { ClusterConfig, Topology } from "./spec.ts";
import { PORTS, ROLES } from "./render/index.ts";
import { containerAddressing, CONTAINER_PATHS, CONTAINER_TLS, type HostNaming } from "./render/container.ts";
import { OPERATOR_CERTIFICATE } from "./tls/plan.ts";
import type { ClusterCertificates, TlsFilePaths } from "./tls/types.ts";
import { EXPORTER_PORTS, exporterDataSourceUri, renderMonitoringFiles, type MONITORING_FILES } from "../monitoring/index.ts";
import type { Platform, WorkloadFile, WorkloadPort } from "./platform/index.ts";
import type { Addressing } from "./render/types.ts";

export const MONITORING_PORTS = { prometheus: 9090, grafana: 3000 } as const;

/** Users the upstream images run as; the secret files they read are theirs (mode 0600). */
export const MONITORING_USERS = {
  /** `nobody` in the Prometheus project's busybox images (Prometheus, postgres_exporter, pgbouncer_exporter). */
  exporter: { uid: 65534, gid: 65534 },
  /** The grafana/grafana image's user (group root, as the image sets it). */
  grafana: { uid: 472, gid: 0 },
} as const;

const dir = CONTAINER_PATHS.configDir;
/** Paths inside the monitoring containers. */
export const MONITORING_PATHS = {
  prometheusConfig: `${dir}/prometheus/prometheus.yml`,
  // renderMonitoringFiles names the rules file relative to prometheus.yml: the same directory.
  alertRules: `${dir}/prometheus/alerts.yml`,
  prometheusData: "/prometheus",
  exporterQueries: `${dir}/postgres-exporter/queries.yaml`,
  exporterPassword: `${dir}/postgres-exporter/password`,
  pgbouncerExporterConnection: `${dir}/pgbouncer-exporter/connection-string`,
  grafanaProvisioning: `${dir}/grafana/provisioning`,
  grafanaDashboards: `${dir}/grafana/dashboards`,
  grafanaAdminPassword: `${dir}/grafana/admin-password`,
} as const;

/**
 * Prometheus's TLS files: the cluster CA and the operator's client certificate (etcd demands one; Patroni
 * accepts it). The exporters get the CA alone, at `caFile`.
 */
export const MONITORING_TLS: TlsFilePaths = {
  caFile: CONTAINER_TLS.caFile,
  certFile: `${CONTAINER_PATHS.tlsDir}/client.crt`,
  keyFile: `${CONTAINER_PATHS.tlsDir}/client.key`,
};

/** Prometheus's scrape and rule evaluation period on the platforms. */
export const SCRAPE_INTERVAL = "15s";

/** An HTTP check with the busybox `wget` the upstream images carry (they have no curl). */
const httpCheck = (port: number, path: string): string[] => ["wget", "-q", "-O", "/dev/null", `http://127.0.0.1:${port}${path}`];

/** Container names of the monitoring processes; `postgresExporter(node)` runs beside that node. */
export function monitoringNames(scope: string) {
  return {
    prometheus: `${scope}-prometheus`,
    grafana: `${scope}-grafana`,
    pgbouncerExporter: `${scope}-pgbouncer-exporter`,
    postgresExporterGroup: `${scope}-postgres-exporter`,
    postgresExporter: (node: string) => `${node}-exporter`,
  };
}

/**
 * The monitoring files as the platforms deliver them: each exporter in a container of its own
 * beside its node (the labels still name the node), addresses from `naming`, SCRAPE_INTERVAL.
 * Shared by the component and `npm run render`.
 */
export function renderPlatformMonitoringFiles(
  config: ClusterConfig,
  topology: Topology,
  naming: HostNaming,
): MonitoringFiles {
  const host = (member: string) => naming.host(member);
  const names = monitoringNames(topology.scope);
  return renderMonitoringFiles(config, topology, containerAddressing(config, topology, naming), {
    // Every node runs Citus: its exporter queries, alerts and panels are rendered.
    citus: true,
    scrapeInterval: SCRAPE_INTERVAL,
    postgresExporterTarget: (node) => `${host(names.postgresExporter(node.name))}:${EXPORTER_PORTS.postgresExporter}`,
    pgbouncerExporterTarget: `${host(names.pgbouncerExporter)}:${EXPORTER_PORTS.pgbouncerExporter}`,
    prometheusUrl: `http://${host(names.prometheus)}:${MONITORING_PORTS.prometheus}`,
    dashboardsDir: MONITORING_PATHS.grafanaDashboards,
    // Patroni and etcd are scraped over HTTPS, verified against the CA, with the operator's certificate.
    tls: MONITORING_TLS,
  });
}

type MonitoringFiles = Record<keyof typeof MONITORING_FILES, string>;
const plain = (path: string, content: string): WorkloadFile => ({ path, content, secret: false });

/** What each monitoring container receives; shared by the component and `npm run render`. */
export const monitoringMemberFiles = {
  /**
   * A postgres_exporter: its queries, the CA it verifies its node with (sslmode=verify-full), and the
   * password of the exporters' role (ROLES.monitor: pg_monitor only; 0600).
   */
  postgresExporter: (files: MonitoringFiles, monitorPassword: string, ca: string): WorkloadFile[] => [
    plain(MONITORING_PATHS.exporterQueries, files.exporterQueries),
    plain(MONITORING_TLS.caFile, ca),
    { path: MONITORING_PATHS.exporterPassword, content: monitorPassword, secret: true },
  ],
  /**
   * The PgBouncer exporter: a connection string to PgBouncer's console (0600), verify-full with the CA,
   * as the monitoring role: PgBouncer's stats_users, SHOW commands only (no PAUSE, no SHUTDOWN).
   */
  pgbouncerExporter: (addressing: Addressing, monitorPassword: string, ca: string): WorkloadFile[] => [
    plain(MONITORING_TLS.caFile, ca),
    {
      path: MONITORING_PATHS.pgbouncerExporterConnection,
      // PgBouncer's console (database `pgbouncer`). PgBouncer requires TLS of its clients; its
      // certificate (the router's) names its address.
      content: `postgres://${ROLES.monitor}:${encodeURIComponent(monitorPassword)}@${addressing.pgbouncer.connect}:${PORTS.pgbouncer}/pgbouncer?sslmode=verify-full&sslrootcert=${encodeURIComponent(MONITORING_TLS.caFile)}`,
      secret: true,
    },
  ],
  /** Prometheus: its config, the alert rules, the CA and the operator's client certificate (key 0600). */
  prometheus: (files: MonitoringFiles, certificates: ClusterCertificates): WorkloadFile[] => {
    const operator = certificates.certificates[OPERATOR_CERTIFICATE];
    if (!operator) throw new Error(`certificates: none issued for ${JSON.stringify(OPERATOR_CERTIFICATE)}; Prometheus presents it to etcd`);
    return [
      plain(MONITORING_PATHS.prometheusConfig, files.prometheusConfig),
      plain(MONITORING_PATHS.alertRules, files.alertRules),
      plain(MONITORING_TLS.caFile, certificates.ca),
      plain(MONITORING_TLS.certFile, operator.cert),
      { path: MONITORING_TLS.keyFile, content: operator.key, secret: true },
    ];
  },
  /** Grafana: datasource, dashboard provider, dashboard, and its admin password (0600). */
  grafana: (files: MonitoringFiles, adminPassword: string): WorkloadFile[] => [
    plain(`${MONITORING_PATHS.grafanaProvisioning}/datasources/prometheus.yml`, files.grafanaDatasource),
    plain(`${MONITORING_PATHS.grafanaProvisioning}/dashboards/provider.yml`, files.grafanaDashboardProvider),
    plain(`${MONITORING_PATHS.grafanaDashboards}/overview.json`, files.dashboard),
    { path: MONITORING_PATHS.grafanaAdminPassword, content: adminPassword, secret: true },
  ],
};

export interface MonitoringArgs {
  /** Validated cluster configuration (images, published ports, database). */
  readonly config: ClusterConfig;
  /** The planned topology: one postgres_exporter per PostgreSQL node. */
  readonly topology: Topology;
  /** Where the processes run. */
  readonly platform: Platform;
  /** The exporters' role's password (secret): postgres_exporter and the PgBouncer exporter log in as ROLES.monitor. */
  readonly monitorPassword: pulumi.Output<string>;
  /** The cluster's CA and certificates (secret): the CA for every scraper, the operator's for Prometheus. */
  readonly certificates: pulumi.Output<ClusterCertificates>;
  /** Grafana's admin password from secret config; generated when missing. Never passed to super(). */
  readonly grafanaAdminPassword?: pulumi.Input<string>;
}

export class Monitoring extends pulumi.ComponentResource {
  /** host:port of Prometheus (published on the docker host). */
  readonly prometheusEndpoint: string;
  /** host:port of Grafana (published on the docker host). */
  readonly grafanaEndpoint: string;
  /** Grafana's `admin` password. Secret. */
  readonly grafanaAdminPassword: pulumi.Output<string>;

  constructor(name: string, args: MonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
    const { config, topology, platform, monitorPassword, certificates } = args;
    // Only plain facts go to super(): component inputs are saved in the state.
    super("dpc:index:Monitoring", name, { scope: topology.scope }, opts);

    const addressing = containerAddressing(config, topology, platform.hostNaming);
    const names = monitoringNames(topology.scope);
    const { prometheus: prometheusName, grafana: grafanaName, pgbouncerExporter: pgbouncerExporterName } = names;
    const exporterName = names.postgresExporter;
    const files = renderPlatformMonitoringFiles(config, topology, platform.hostNaming);
    // Monitoring does not wait for the database: it must come up, and show it, when the database does not.
    const childOpts = { parent: this, dependsOn: opts?.dependsOn };

    platform.deployGroup(
      {
        name: names.postgresExporterGroup,
        image: config.postgresExporterImage,
        members: topology.groups.flat().map((node) => ({
          name: exporterName(node.name),
          command: [
            "/bin/postgres_exporter",
            `--web.listen-address=:${EXPORTER_PORTS.postgresExporter}`,
            `--extend.query-path=${MONITORING_PATHS.exporterQueries}`,
          ],
          // The password travels in a file (DATA_SOURCE_PASS_FILE), never in the environment.
          env: {
            DATA_SOURCE_URI: exporterDataSourceUri(addressing.postgres(node).connect, PORTS.postgres, config.database, MONITORING_TLS.caFile),
            DATA_SOURCE_USER: ROLES.monitor,
            DATA_SOURCE_PASS_FILE: MONITORING_PATHS.exporterPassword,
          },
          files: pulumi.all([monitorPassword, certificates]).apply(([password, c]) => monitoringMemberFiles.postgresExporter(files, password, c.ca)),
        })),
        ports: [{ port: EXPORTER_PORTS.postgresExporter }],
        healthcheck: httpCheck(EXPORTER_PORTS.postgresExporter, "/"),
        runAs: MONITORING_USERS.exporter,
      },
      childOpts,
    );

    platform.deployGroup(
      {
        name: pgbouncerExporterName,
        image: config.pgbouncerExporterImage,
        members: [
          {
            name: pgbouncerExporterName,
            // The exporter reads its connection string from the environment or a flag only: a shell
            // reads it from a 0600 file, so the password is in neither the container's config nor the state.
            command: [
              "/bin/sh",
              "-c",
              `export PGBOUNCER_EXPORTER_CONNECTION_STRING="$(cat ${MONITORING_PATHS.pgbouncerExporterConnection})"; ` +
                `exec /bin/pgbouncer_exporter --web.listen-address=:${EXPORTER_PORTS.pgbouncerExporter}`,
            ],
            files: pulumi.all([monitorPassword, certificates]).apply(([m, c]) => monitoringMemberFiles.pgbouncerExporter(addressing, m, c.ca)),
          },
        ],
        ports: [{ port: EXPORTER_PORTS.pgbouncerExporter }],
        healthcheck: httpCheck(EXPORTER_PORTS.pgbouncerExporter, "/"),
        runAs: MONITORING_USERS.exporter,
      },
      childOpts,
    );

    // Neither Prometheus nor Grafana's anonymous pages should face the network: bound to
    // monitoringPublishAddress (127.0.0.1 unless the stack asks otherwise) on docker; ClusterIP on kubernetes.
    const prometheusPort: WorkloadPort = { port: MONITORING_PORTS.prometheus, publishedPort: config.prometheusPort, publishAddress: config.monitoringPublishAddress };
    platform.deployGroup(
      {
        name: prometheusName,
        image: config.prometheusImage,
        members: [
          {
            name: prometheusName,
            command: [
              "/bin/prometheus",
              `--config.file=${MONITORING_PATHS.prometheusConfig}`,
              `--storage.tsdb.path=${MONITORING_PATHS.prometheusData}`,
              `--web.listen-address=0.0.0.0:${MONITORING_PORTS.prometheus}`,
            ],
            files: certificates.apply((c) => monitoringMemberFiles.prometheus(files, c)),
          },
        ],
        ports: [prometheusPort],
        // The TSDB outlives a replaced container.
        volumePath: MONITORING_PATHS.prometheusData,
        healthcheck: httpCheck(MONITORING_PORTS.prometheus, "/-/ready"),
        // The image's own user, named explicitly so that Kubernetes (fsGroup) makes the volume writable.
        runAs: MONITORING_USERS.exporter,
      },
      childOpts,
    );

    this.grafanaAdminPassword = pulumi.secret(
      args.grafanaAdminPassword ?? new random.RandomPassword(`${name}-grafana-admin-password`, { length: 24, special: false }, { parent: this }).result,
    );
    const adminPassword = this.grafanaAdminPassword;
    const grafanaPort: WorkloadPort = { port: MONITORING_PORTS.grafana, publishedPort: config.grafanaPort, publishAddress: config.monitoringPublishAddress };
    platform.deployGroup(
      {
        name: grafanaName,
        image: config.grafanaImage,
        members: [
          {
            name: grafanaName,
            // The image's own start script: it turns GF_*__FILE variables into settings.
            command: ["/run.sh"],
            env: {
              GF_PATHS_PROVISIONING: MONITORING_PATHS.grafanaProvisioning,
              GF_SECURITY_ADMIN_USER: "admin",
              GF_SECURITY_ADMIN_PASSWORD__FILE: MONITORING_PATHS.grafanaAdminPassword,
              GF_USERS_ALLOW_SIGN_UP: "false",
            },
            files: adminPassword.apply((password) => monitoringMemberFiles.grafana(files, password)),
          },
        ],
        ports: [grafanaPort],
        // No volume: datasource and dashboards are provisioned, and a fresh database on each
        // replacement keeps the admin password in step with the config (Grafana reads it only
        // when it creates its database).
        healthcheck: httpCheck(MONITORING_PORTS.grafana, "/api/health"),
        startSeconds: 60,
        runAs: MONITORING_USERS.grafana,
      },
      childOpts,
    );

    this.prometheusEndpoint = platform.clientEndpoint(prometheusName, prometheusPort);
    this.grafanaEndpoint = platform.clientEndpoint(grafanaName, grafanaPort);
    this.registerOutputs({
      prometheusEndpoint: this.prometheusEndpoint,
      grafanaEndpoint: this.grafanaEndpoint,
      grafanaAdminPassword: this.grafanaAdminPassword,
    });
  }
}

// Monitoring: Prometheus (scrape config, alert rules), a postgres_exporter beside every PostgreSQL
// node, a PgBouncer exporter, and Grafana with its datasource and dashboard provisioned. Every file
// comes from the monitoring/ renderers, addressed like the rest of the cluster (containerAddressing).
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { ClusterConfig, Topology } from "./spec.ts";
import { PORTS, ROLES, type ClusterSecrets } from "./render/index.ts";
import { containerAddressing, CONTAINER_PATHS } from "./render/container.ts";
import { EXPORTER_PORTS, exporterDataSourceUri, renderMonitoringFiles } from "../monitoring/index.ts";
import type { Platform, WorkloadPort } from "./platform/index.ts";

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

/** Prometheus's scrape and rule evaluation period on the platforms. */
export const SCRAPE_INTERVAL = "15s";

/** An HTTP check with the busybox `wget` the upstream images carry (they have no curl). */
const httpCheck = (port: number, path: string): string[] => ["wget", "-q", "-O", "/dev/null", `http://127.0.0.1:${port}${path}`];

export interface MonitoringArgs {
  /** Validated cluster configuration (images, published ports, database). */
  readonly config: ClusterConfig;
  /** The planned topology: one postgres_exporter per PostgreSQL node. */
  readonly topology: Topology;
  /** Where the processes run. */
  readonly platform: Platform;
  /** The cluster's passwords, a secret Output (the exporters log in as the superuser). */
  readonly secrets: pulumi.Output<ClusterSecrets>;
  /** Grafana's admin password from secret config; generated when missing. Never passed to super(). */
  readonly grafanaAdminPassword?: pulumi.Input<string>;
  /** The nodes run Citus: render the Citus queries, alerts and panels (default true, as shipped). */
  readonly citus?: boolean;
}

export class Monitoring extends pulumi.ComponentResource {
  /** host:port of Prometheus (published on the docker host). */
  readonly prometheusEndpoint: string;
  /** host:port of Grafana (published on the docker host). */
  readonly grafanaEndpoint: string;
  /** Grafana's `admin` password. Secret. */
  readonly grafanaAdminPassword: pulumi.Output<string>;

  constructor(name: string, args: MonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
    const { config, topology, platform, secrets } = args;
    // Only plain facts go to super(): component inputs are saved in the state.
    super("dpc:index:Monitoring", name, { scope: topology.scope }, opts);

    const host = (member: string) => platform.hostNaming.host(member);
    const addressing = containerAddressing(config, topology, platform.hostNaming);
    const prometheusName = `${topology.scope}-prometheus`;
    const grafanaName = `${topology.scope}-grafana`;
    const pgbouncerExporterName = `${topology.scope}-pgbouncer-exporter`;
    const exporterName = (node: string) => `${node}-exporter`;
    const files = renderMonitoringFiles(config, topology, addressing, {
      citus: args.citus ?? true,
      scrapeInterval: SCRAPE_INTERVAL,
      // Each exporter runs in a container of its own beside its node; the labels still name the node.
      postgresExporterTarget: (node) => `${host(exporterName(node.name))}:${EXPORTER_PORTS.postgresExporter}`,
      pgbouncerExporterTarget: `${host(pgbouncerExporterName)}:${EXPORTER_PORTS.pgbouncerExporter}`,
      prometheusUrl: `http://${host(prometheusName)}:${MONITORING_PORTS.prometheus}`,
      dashboardsDir: MONITORING_PATHS.grafanaDashboards,
    });
    const plain = (path: string, content: string) => ({ path, content, secret: false });
    // Monitoring does not wait for the database: it must come up, and show it, when the database does not.
    const childOpts = { parent: this, dependsOn: opts?.dependsOn };

    platform.deployGroup(
      {
        name: `${topology.scope}-postgres-exporter`,
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
            DATA_SOURCE_URI: exporterDataSourceUri(addressing.postgres(node).connect, PORTS.postgres, config.database),
            DATA_SOURCE_USER: ROLES.superuser,
            DATA_SOURCE_PASS_FILE: MONITORING_PATHS.exporterPassword,
          },
          files: secrets.apply((s) => [
            plain(MONITORING_PATHS.exporterQueries, files.exporterQueries),
            { path: MONITORING_PATHS.exporterPassword, content: s.superuser, secret: true },
          ]),
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
            files: secrets.apply((s) => [
              {
                path: MONITORING_PATHS.pgbouncerExporterConnection,
                // PgBouncer's admin console (database `pgbouncer`); the superuser is its admin_users.
                content: `postgres://${ROLES.superuser}:${encodeURIComponent(s.superuser)}@${addressing.pgbouncer.connect}:${PORTS.pgbouncer}/pgbouncer?sslmode=disable`,
                secret: true,
              },
            ]),
          },
        ],
        ports: [{ port: EXPORTER_PORTS.pgbouncerExporter }],
        healthcheck: httpCheck(EXPORTER_PORTS.pgbouncerExporter, "/"),
        runAs: MONITORING_USERS.exporter,
      },
      childOpts,
    );

    const prometheusPort: WorkloadPort = { port: MONITORING_PORTS.prometheus, publishedPort: config.prometheusPort };
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
            files: [
              plain(MONITORING_PATHS.prometheusConfig, files.prometheusConfig),
              plain(MONITORING_PATHS.alertRules, files.alertRules),
            ],
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
    const grafanaPort: WorkloadPort = { port: MONITORING_PORTS.grafana, publishedPort: config.grafanaPort };
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
            files: adminPassword.apply((password) => [
              plain(`${MONITORING_PATHS.grafanaProvisioning}/datasources/prometheus.yml`, files.grafanaDatasource),
              plain(`${MONITORING_PATHS.grafanaProvisioning}/dashboards/provider.yml`, files.grafanaDashboardProvider),
              plain(`${MONITORING_PATHS.grafanaDashboards}/overview.json`, files.dashboard),
              { path: MONITORING_PATHS.grafanaAdminPassword, content: password, secret: true },
            ]),
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

// Every file a stack ships, as `npm run render` writes it: one folder per container (or step) that
// receives the files, from the same render functions, paths and modes the components deliver.
// test/unit/render-ships.test.ts compares this list with what the components register under
// Pulumi's mocks (uploads, etcd's command line, the migrations the Schema step applies): nothing can
// ship without being rendered here.
import type { ClusterConfig } from "./spec.ts";
import { planTopology } from "./spec.ts";
import { PORTS, renderCluster, type ClusterSecrets } from "./render/index.ts";
import { containerAddressing, containerLayout, containerRouterNames, CONTAINER_PATHS, dockerHostNaming, kubernetesHostNaming } from "./render/container.ts";
import { certificatePlan } from "./tls/plan.ts";
import type { ClusterCertificates } from "./tls/types.ts";
import type { WorkloadFile } from "./platform/types.ts";
import { memberService } from "./platform/kubernetes.ts";
import { MONITORING_PATHS, monitoringMemberFiles, monitoringNames, renderPlatformMonitoringFiles } from "./monitoring.ts";
import { DEFAULT_ALERT_OPTIONS, renderAlertRuleTests } from "../monitoring/index.ts";
import { renderMigrations, type MigrationContext } from "../sql/migrations.ts";
import { vectorDialect } from "../sql/vector-dialect.ts";

/** One rendered file, placed as `<dir>/<path>` under the output directory. */
export interface ShippedFile {
  /** The container (Docker) or pod (Kubernetes) that receives it, e.g. `dpc-coordinator-0`; or a step: `dpc-schema`, `promtool`. */
  dir: string;
  /** Its path inside the container relative to /etc/dpc (e.g. `prometheus/alerts.yml`); a file elsewhere keeps its full path without the leading `/`. */
  path: string;
  content: string;
  /** Mode as delivered: 0600 (0700 for a script) when it holds a password, else 0644 (0755). */
  mode: number;
}

/** Passwords as the components receive them: the cluster's five, Grafana's admin and the exporters' role's. */
export interface ShippedSecrets extends ClusterSecrets {
  grafanaAdmin: string;
  monitor: string;
  /** PgBouncer's generated credentials (ROLES.poolerLookup, ROLES.poolerAdmin). */
  poolerLookup: string;
  poolerAdmin: string;
}

/**
 * What the render writes for the credentials the program generates and no config key sets
 * (PgBouncer's lookup role's and admin user's): PgBouncer's auth file shows where they go.
 */
export const GENERATED_PLACEHOLDERS = {
  poolerLookup: "PLACEHOLDER-generated-pooler-lookup-password",
  poolerAdmin: "PLACEHOLDER-generated-pooler-admin-password",
} as const;

/**
 * Stand-ins for the certificates (issued at deploy time by the ClusterCertificates resource), one text
 * per file: `PLACEHOLDER-caCertificate`, `PLACEHOLDER-certificate-<id>` and `PLACEHOLDER-key-<id>`
 * (`<id>`: a node's or etcd member's name, `router`, `operator`), followed by the names the
 * certificate will carry, so that a reader sees which file gets which certificate.
 */
export function placeholderCertificates(config: ClusterConfig): ClusterCertificates {
  const topology = planTopology(config);
  const plan = certificatePlan(topology, containerAddressing(config, topology, namingOf(config)), { routerNames: containerRouterNames(config, topology), etcdLoopback: true });
  return {
    ca: "PLACEHOLDER-caCertificate\n",
    certificates: Object.fromEntries(
      plan.map((spec) => [
        spec.id,
        {
          cert: `PLACEHOLDER-certificate-${spec.id}\n# names: ${[...spec.dnsNames, ...spec.ipAddresses].join(", ") || "(client only)"}\n`,
          key: `PLACEHOLDER-key-${spec.id}\n`,
          issuedFor: JSON.stringify(spec),
        },
      ]),
    ),
  };
}

function namingOf(config: ClusterConfig) {
  return config.platform === "kubernetes" ? kubernetesHostNaming(config.kubernetesNamespace, memberService) : dockerHostNaming;
}

/** The folder of the migrations: the Schema component's name, the step that applies them. */
export const schemaStep = (scope: string) => `${scope}-schema`;
/** The folder of the alert rules' unit tests: the step that runs them (`promtool test rules`). */
export const PROMTOOL_STEP = "promtool";

/** The migration context rendered: what ships (Citus present, the extension's own HNSW access method name). */
export function shippedMigrationContext(config: ClusterConfig): MigrationContext {
  return { citus: true, hnswAccessMethod: vectorDialect(config.vectorExtension).accessMethodCandidates[0] };
}

// Same rule as the platforms' delivery (docker uploads, the kubernetes wrapper).
const modeOf = (file: WorkloadFile) => (file.secret ? (file.executable ? 0o700 : 0o600) : file.executable ? 0o755 : 0o644);

const inFolder = (path: string) =>
  path.startsWith(`${CONTAINER_PATHS.configDir}/`) ? path.slice(CONTAINER_PATHS.configDir.length + 1) : path.replace(/^\/+/, "");

/** Every file of the stack, in a stable order (containers as they start, then the steps). */
export function shippedFiles(config: ClusterConfig, secrets: ShippedSecrets, certificates: ClusterCertificates = placeholderCertificates(config)): ShippedFile[] {
  const topology = planTopology(config);
  const naming = namingOf(config);
  const addressing = containerAddressing(config, topology, naming);
  const rendered = renderCluster(config, topology, addressing, containerLayout(config), secrets, { lookup: secrets.poolerLookup, admin: secrets.poolerAdmin, monitor: secrets.monitor }, certificates);
  const names = monitoringNames(topology.scope);
  const monitoring = renderPlatformMonitoringFiles(config, topology, naming);
  const containers: [string, WorkloadFile[]][] = [
    ...rendered.postgres.map(({ node, files }): [string, WorkloadFile[]] => [node.name, files]),
    [`${topology.scope}-haproxy`, rendered.haproxy],
    [`${topology.scope}-pgbouncer`, rendered.pgbouncer],
    ...topology.groups
      .flat()
      .map((node): [string, WorkloadFile[]] => [names.postgresExporter(node.name), monitoringMemberFiles.postgresExporter(monitoring, secrets.monitor, certificates.ca)]),
    [names.pgbouncerExporter, monitoringMemberFiles.pgbouncerExporter(addressing, secrets.monitor, certificates.ca)],
    [names.prometheus, monitoringMemberFiles.prometheus(monitoring, certificates)],
    [names.grafana, monitoringMemberFiles.grafana(monitoring, secrets.grafanaAdmin)],
  ];
  const files: ShippedFile[] = containers.flatMap(([dir, list]) =>
    list.map((file) => ({ dir, path: inFolder(file.path), content: file.content, mode: modeOf(file) })),
  );

  // etcd's flags are its command line, one per line here; its files are its certificate, key and CA.
  for (const { member, args, files: tlsFiles } of rendered.etcd) {
    const metrics = config.platform === "kubernetes" ? [`--listen-metrics-urls=http://0.0.0.0:${PORTS.etcdMetrics}`] : [];
    files.push({ dir: member.name, path: "etcd.args", content: [...args, ...metrics].join("\n") + "\n", mode: 0o644 });
    for (const file of tlsFiles) files.push({ dir: member.name, path: inFolder(file.path), content: file.content, mode: modeOf(file) });
  }

  // The alert rules' unit tests run beside the shipped rules: `promtool test rules promtool/alert-tests.yml`.
  const rulesFromTests = `../${names.prometheus}/${inFolder(MONITORING_PATHS.alertRules)}`;
  files.push({
    dir: PROMTOOL_STEP,
    path: "alert-tests.yml",
    content: renderAlertRuleTests(config, { ...DEFAULT_ALERT_OPTIONS, citus: true }, rulesFromTests),
    mode: 0o644,
  });

  // The migrations, in the order the Schema step applies them, each with a header saying for what context.
  const context = shippedMigrationContext(config);
  const header = [
    `-- Applied by the ${schemaStep(topology.scope)} step in file-name order, through the coordinator leader.`,
    `-- Rendered as it ships: Citus present (tables distributed), HNSW access method "${context.hnswAccessMethod}" (${config.vectorExtension}).`,
    "-- At apply time both are read from the database (pg_extension, pg_am); these three lines are not applied.",
  ].join("\n");
  for (const migration of renderMigrations(config, context)) {
    files.push({ dir: schemaStep(topology.scope), path: `${migration.id}.sql`, content: `${header}\n${migration.sql}`, mode: 0o644 });
  }
  return files;
}

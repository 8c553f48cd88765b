// Every file a stack ships, as `npm run render` writes it: one folder per container (or step) that
// receives the files, from the same render functions, paths and modes the components deliver.
// test/unit/render-ships.test.ts compares this list with what the components register under
// Pulumi's mocks (uploads, etcd's command line, the migrations the Schema step applies): nothing can
// ship without being rendered here.
import type { ClusterConfig } from "./spec.ts";
import { planTopology } from "./spec.ts";
import { renderCluster, type ClusterSecrets } from "./render/index.ts";
import { containerAddressing, containerLayout, CONTAINER_PATHS, dockerHostNaming, kubernetesHostNaming } from "./render/container.ts";
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

/** Passwords as the components receive them: the cluster's five and Grafana's admin password. */
export interface ShippedSecrets extends ClusterSecrets {
  grafanaAdmin: string;
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
export function shippedFiles(config: ClusterConfig, secrets: ShippedSecrets): ShippedFile[] {
  const topology = planTopology(config);
  const naming = config.platform === "kubernetes" ? kubernetesHostNaming(config.kubernetesNamespace, memberService) : dockerHostNaming;
  const addressing = containerAddressing(config, topology, naming);
  const rendered = renderCluster(config, topology, addressing, containerLayout(config), secrets);
  const names = monitoringNames(topology.scope);
  const monitoring = renderPlatformMonitoringFiles(config, topology, naming);
  const containers: [string, WorkloadFile[]][] = [
    ...rendered.postgres.map(({ node, files }): [string, WorkloadFile[]] => [node.name, files]),
    [`${topology.scope}-haproxy`, rendered.haproxy],
    [`${topology.scope}-pgbouncer`, rendered.pgbouncer],
    ...topology.groups
      .flat()
      .map((node): [string, WorkloadFile[]] => [names.postgresExporter(node.name), monitoringMemberFiles.postgresExporter(monitoring, secrets.superuser)]),
    [names.pgbouncerExporter, monitoringMemberFiles.pgbouncerExporter(addressing, secrets.superuser)],
    [names.prometheus, monitoringMemberFiles.prometheus(monitoring)],
    [names.grafana, monitoringMemberFiles.grafana(monitoring, secrets.grafanaAdmin)],
  ];
  const files: ShippedFile[] = containers.flatMap(([dir, list]) =>
    list.map((file) => ({ dir, path: inFolder(file.path), content: file.content, mode: modeOf(file) })),
  );

  // etcd receives no file: its flags are its command line, one per line here.
  for (const { member, args } of rendered.etcd) files.push({ dir: member.name, path: "etcd.args", content: args.join("\n") + "\n", mode: 0o644 });

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

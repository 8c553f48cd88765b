// Stack configuration as the cluster spec takes it. Pure (no Pulumi imports): `index.ts` feeds it
// Pulumi's config, `npm run render` feeds it the parsed Pulumi.<stack>.yaml.
import type { ClusterSecrets } from "./render/types.ts";
import { TLS_CA_CONFIG_KEYS } from "./spec.ts";

/** Secret config keys (`pulumi config set --secret KEY VALUE`); a missing one is generated, a changed one rotated (components/rotation/). */
export const PASSWORD_CONFIG_KEYS = {
  superuser: "superuserPassword",
  replication: "replicationPassword",
  rewind: "rewindPassword",
  restApi: "restApiPassword",
  app: "appPassword",
} as const satisfies Record<keyof ClusterSecrets, string>;

/** Secret config key of Grafana's admin password; generated when missing. */
export const GRAFANA_ADMIN_PASSWORD_KEY = "grafanaAdminPassword";

/** Secret config key of the exporters' role's password (ROLES.monitor); generated when missing. */
export const MONITOR_PASSWORD_KEY = "monitorPassword";

/** Secret config keys of a user-supplied cluster CA (validated by spec.ts certificateAuthorityProblems). */
export const TLS_CA_KEYS = TLS_CA_CONFIG_KEYS;

/**
 * The keys under the project's namespace (`<project>:<key>`), without the namespace and without the
 * password and CA keys, which never reach the spec (they are read as secrets on their own).
 */
export function projectConfig(all: Record<string, unknown>, project: string): Record<string, unknown> {
  const prefix = `${project}:`;
  const passwordKeys = new Set<string>([...Object.values(PASSWORD_CONFIG_KEYS), GRAFANA_ADMIN_PASSWORD_KEY, MONITOR_PASSWORD_KEY, ...Object.values(TLS_CA_CONFIG_KEYS)]);
  const result: Record<string, unknown> = {};
  for (const [fullKey, value] of Object.entries(all)) {
    if (!fullKey.startsWith(prefix)) continue;
    const key = fullKey.slice(prefix.length);
    if (!passwordKeys.has(key)) result[key] = value;
  }
  return result;
}

/** The project's keys of a `Pulumi.<stack>.yaml` file (parsed YAML), as projectConfig returns them. */
export function stackFileConfig(stackFile: unknown, project: string): Record<string, unknown> {
  const config = (stackFile as { config?: Record<string, unknown> } | null)?.config ?? {};
  return projectConfig(config, project);
}

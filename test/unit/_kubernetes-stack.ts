// The program under mocks with `platform: kubernetes` (no cluster and no Pulumi CLI here): every
// test/unit/kubernetes-*.test.ts file loads it once, with its own extra config, and reads the objects
// the program registers by their Kubernetes kind and name.
import * as pulumi from "@pulumi/pulumi";
import { byType, devStackConfig, key, registrations, reveal, settled, valueOf, type Registration } from "./_pulumi-harness.ts";

export const IMAGE = "registry.example.com/dpc-postgres:pg17";
export const STEPS_IMAGE = "registry.example.com/dpc-deploy-steps:pg17";
export const POD_CIDR = "10.244.0.0/16";
export const APP_PASSWORD = "app-password-from-secret-config";
export const DOMAIN = "dpc.svc.cluster.local";

export const TYPES = {
  namespace: "kubernetes:core/v1:Namespace",
  statefulSet: "kubernetes:apps/v1:StatefulSet",
  deployment: "kubernetes:apps/v1:Deployment",
  service: "kubernetes:core/v1:Service",
  secret: "kubernetes:core/v1:Secret",
  claim: "kubernetes:core/v1:PersistentVolumeClaim",
  budget: "kubernetes:policy/v1:PodDisruptionBudget",
  networkPolicy: "kubernetes:networking.k8s.io/v1:NetworkPolicy",
  job: "kubernetes:batch/v1:Job",
  configMap: "kubernetes:core/v1:ConfigMap",
  serviceAccount: "kubernetes:core/v1:ServiceAccount",
  role: "kubernetes:rbac.authorization.k8s.io/v1:Role",
  roleBinding: "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
} as const;

/** Sets the dev stack's config with `platform: kubernetes` (plus `extra`). */
export function setKubernetesConfig(extra: Record<string, string> = {}): void {
  pulumi.runtime.setAllConfig(
    {
      ...devStackConfig(),
      [key("platform")]: "kubernetes",
      [key("databaseImage")]: IMAGE,
      [key("deployStepsImage")]: STEPS_IMAGE,
      [key("kubernetesPodCidr")]: POD_CIDR,
      [key("appPassword")]: APP_PASSWORD,
      ...Object.fromEntries(Object.entries(extra).map(([k, v]) => [key(k), v])),
    },
    [key("appPassword")],
  );
}

/**
 * Sets the config (setKubernetesConfig), runs the program, waits until it has registered everything.
 * `tag`: a fresh instance of the program (another run in the same test file).
 */
export async function loadKubernetesStack(extra: Record<string, string> = {}, tag?: string): Promise<any> {
  setKubernetesConfig(extra);
  const stack = await import(tag ? `../../index.ts?${tag}` : "../../index.ts");
  await valueOf(stack.appConnectionString);
  await settled();
  return stack;
}

/** A registered object's Kubernetes name (an auto-named Job's: the stem Pulumi suffixes). */
export const k8sName = (r: Registration) => (r.inputs.metadata as { name?: string }).name ?? r.name;
/** The registered object of a type with a Kubernetes name. */
export const named = (type: string, name: string): Registration => {
  const found = byType(type).find((r) => k8sName(r) === name);
  if (!found) throw new Error(`no ${type} named ${name}`);
  return found;
};
export const spec = (r: Registration) => reveal(r.inputs.spec) as any;
export const podSpec = (r: Registration) => spec(r).template.spec;
export const container = (r: Registration) => podSpec(r).containers[0];
/** The group Secret's data, revealed. */
export const secretData = (group: string) => reveal(named(TYPES.secret, `${group}-files`).inputs.stringData) as Record<string, string>;

export const DATABASE_GROUPS = ["dpc-coordinator", ...[1, 2, 3, 4, 5, 6].map((g) => `dpc-worker${g}`)];
export const membersOf = (set: Registration) => Array.from({ length: spec(set).replicas }, (_, i) => `${k8sName(set)}-${i}`);

/** Every registered Kubernetes object as the API server would receive it: secrets revealed, apiVersion and kind set. */
export function manifests(): Record<string, any>[] {
  return registrations.filter((r) => r.type.startsWith("kubernetes:")).map((r) => revealDeep(r.inputs) as Record<string, any>);
}

function revealDeep(value: unknown): unknown {
  const plain = reveal(value);
  if (Array.isArray(plain)) return plain.map(revealDeep);
  if (plain && typeof plain === "object") return Object.fromEntries(Object.entries(plain).map(([k, v]) => [k, revealDeep(v)]));
  return plain;
}

/** Resource options the engine receives that the shared recorder does not keep, by URN. */
export const resourceOptions = new Map<
  string,
  { ignoreChanges: string[]; retainOnDelete: boolean; replaceOnChanges: string[]; customTimeouts: { create: string; update: string } | undefined }
>();
{
  // Wrap the mock monitor once more (after _pulumi-harness's setMocks): read what the request carries.
  const monitor = pulumi.runtime.getMonitor() as any;
  const registerResource = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req: any, callback: (err: unknown, response: any) => void) =>
    registerResource(req, (err: unknown, response: any) => {
      if (!err) {
        const timeouts = req.getCustomtimeouts?.();
        resourceOptions.set(response.getUrn(), {
          ignoreChanges: req.getIgnorechangesList(),
          retainOnDelete: Boolean(req.getRetainondelete?.()),
          replaceOnChanges: req.getReplaceonchangesList?.() ?? [],
          customTimeouts: timeouts ? { create: timeouts.getCreate(), update: timeouts.getUpdate() } : undefined,
        });
      }
      callback(err, response);
    });
}

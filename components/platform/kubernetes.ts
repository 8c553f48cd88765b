// The Kubernetes platform: one namespace; per workload group, pods with stable DNS names behind a
// headless Service, and one Secret holding every member's rendered files and command.
//
// - A group whose members are named `<group>-<ordinal>` (etcd, the Patroni groups) is a StatefulSet
//   `<group>` with the headless Service `<group>`: pod names, hostnames and member names coincide.
// - Any other member (the router's and monitoring's processes, named after what they are) is a
//   Deployment of one pod whose hostname is the member's name, behind a headless Service of the same
//   name (a StatefulSet cannot give its pods such names).
// Either way a member's address is `<member>.<service>.<namespace>.svc.cluster.local`, where the
// service follows from the member's name alone (memberService): the renderers need the addresses
// before any group is deployed.
//
// The pods of a StatefulSet share one template, but each member has its own files (patroni.yml with
// its own name and addresses) and command: MEMBER_WRAPPER, the container's command, picks them out
// of the group's Secret by $HOSTNAME. The database image is never built here: `databaseImage` names a
// pre-built one.
import { createHash } from "node:crypto";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { ClusterConfig } from "../spec.ts";
import { CONTAINER_PATHS, kubernetesHostNaming, type HostNaming } from "../render/container.ts";
import type { DeployOptions, Platform, WorkloadFile, WorkloadGroup, WorkloadMember, WorkloadPort } from "./types.ts";

/** Where the group's Secret is mounted (read-only) in every pod. */
export const STAGING_DIR = "/run/dpc/files";
/** Every delivered file lives under this directory: a writable emptyDir in the pod. */
export const FILES_DIR = CONTAINER_PATHS.configDir;
/** Environment variable holding the pod's name, for commands shared by a StatefulSet's pods. */
export const MEMBER_VAR = "DPC_MEMBER";

/**
 * The container command of a pod whose member has files or environment: POSIX sh, run as
 * `sh -c MEMBER_WRAPPER dpc-member STAGING_DIR`. The member is $HOSTNAME (a StatefulSet pod's name,
 * or the hostname a Deployment sets). From the staging directory (the group's Secret) it reads:
 * - `<member>.files`: lines `<mode> <key> <absolute path>`; copies each key to its path (created
 *   under umask 077, then chmod'ed, so a secret file is never readable by others, even briefly);
 * - `<member>.env`: lines `NAME=value`, exported;
 * - `<member>.command`: the argv, one argument a line; exec'ed, so the process keeps the pod's PID 1
 *   and gets its stop signal.
 * DPC_ROOT (unset in pods) prefixes every target path, so that tests can run it in a temp dir.
 * Keep `$(` and `$$` out of it: the kubelet would expand them in a container command.
 */
export const MEMBER_WRAPPER = `set -eu
staging="$1"
member="$HOSTNAME"
root="\${DPC_ROOT:-}"
if [ ! -f "$staging/$member.command" ]; then
  echo "dpc-member: no member named $member in $staging" >&2
  exit 1
fi
umask 077
while read -r mode key path; do
  mkdir -p "$root\${path%/*}"
  cp "$staging/$key" "$root$path"
  chmod "$mode" "$root$path"
done < "$staging/$member.files"
while IFS= read -r line; do
  export "$line"
done < "$staging/$member.env"
set --
while IFS= read -r arg; do
  set -- "$@" "$arg"
done < "$staging/$member.command"
exec "$@"
`;

/** The headless Service a member's DNS name goes through: `<group>` for `<group>-<ordinal>`, else its own. */
export function memberService(member: string): string {
  return /^(.+)-\d+$/.exec(member)?.[1] ?? member;
}

/** Modes as the docker platform delivers them. */
export function fileMode(file: WorkloadFile): string {
  if (file.secret) return file.executable ? "0700" : "0600";
  return file.executable ? "0755" : "0644";
}

const DNS_LABEL = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
// Paths and Secret keys the wrapper reads with `read`: no spaces, no newlines, no shell syntax.
const SAFE_PATH = /^\/[A-Za-z0-9._/-]+$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

const lines = (items: string[]) => items.map((item) => `${item}\n`).join("");

/**
 * The group Secret's data: for each member, its files (`<member>__<basename>`) and the wrapper's
 * `<member>.files`, `<member>.env` and `<member>.command`. Member names are DNS labels (no `.` or
 * `_`), so the two kinds of key never collide. Throws on what the wrapper could not carry.
 */
export function memberSecretData(members: WorkloadMember[], filesPerMember: WorkloadFile[][]): Record<string, string> {
  const data: Record<string, string> = {};
  members.forEach((member, i) => {
    const manifest: string[] = [];
    for (const file of filesPerMember[i]) {
      if (!SAFE_PATH.test(file.path) || !file.path.startsWith(`${FILES_DIR}/`) || file.path.includes("/../")) {
        throw new Error(`kubernetes platform: ${member.name}: file ${JSON.stringify(file.path)}: allowed: a path under ${FILES_DIR}/ of letters, digits and ._-/`);
      }
      const key = `${member.name}__${file.path.slice(file.path.lastIndexOf("/") + 1)}`;
      if (key in data) throw new Error(`kubernetes platform: ${member.name}: two files named ${key.split("__")[1]}`);
      data[key] = file.content;
      manifest.push(`${fileMode(file)} ${key} ${file.path}`);
    }
    const env = Object.entries(member.env ?? {});
    for (const [name, value] of env) {
      if (!ENV_NAME.test(name) || value.includes("\n")) throw new Error(`kubernetes platform: ${member.name}: environment variable ${name}: a name of [A-Za-z0-9_] and a one-line value`);
    }
    if (member.command.some((arg) => arg.includes("\n"))) throw new Error(`kubernetes platform: ${member.name}: a command argument holds a newline`);
    data[`${member.name}.files`] = lines(manifest);
    data[`${member.name}.env`] = lines(env.map(([name, value]) => `${name}=${value}`));
    data[`${member.name}.command`] = lines(member.command);
  });
  return data;
}

/** kubelet expands `$(VAR)` in a container's command; `$$` stands for a literal `$`. */
export function escapeForKubelet(arg: string): string {
  return arg.replaceAll("$", () => "$$");
}

/** The kubelet's expansion of `$(VAR)` and `$$` (unknown variables stay as written). */
export function expandLikeKubelet(arg: string, vars: Record<string, string>): string {
  return arg.replace(/\$(\$|\(([A-Za-z_][A-Za-z0-9_]*)\))/g, (whole, _, name: string | undefined) =>
    name === undefined ? "$" : (vars[name] ?? whole),
  );
}

/**
 * One command line for all `members`, in which each member's own name is `$(DPC_MEMBER)` (the pod
 * name): what etcd needs, whose upstream image has no shell to run MEMBER_WRAPPER. Only arguments
 * that differ between members are templated; undefined when that does not reproduce every member's
 * command exactly.
 */
export function sharedCommand(members: WorkloadMember[]): string[] | undefined {
  const [first] = members;
  if (members.some((m) => m.command.length !== first.command.length)) return undefined;
  const template = first.command.map((arg, j) =>
    members.every((m) => m.command[j] === arg)
      ? escapeForKubelet(arg)
      : escapeForKubelet(arg).split(first.name).join(`$(${MEMBER_VAR})`),
  );
  const fits = members.every((m) => template.every((arg, j) => expandLikeKubelet(arg, { [MEMBER_VAR]: m.name }) === m.command[j]));
  return fits ? template : undefined;
}

const hasNoFiles = (member: WorkloadMember) =>
  Array.isArray(member.files) && member.files.length === 0 && Object.keys(member.env ?? {}).length === 0;

/**
 * True when the group is a StatefulSet (members `<group>-0`, `<group>-1`, ...); false when each
 * member gets a pod of its own. Throws when a member's pod could not carry the DNS name that
 * memberService gave the renderers.
 */
export function isStatefulSet(group: Pick<WorkloadGroup, "name" | "members">): boolean {
  const ordinal = group.members.every((m, i) => m.name === `${group.name}-${i}`);
  for (const member of group.members) {
    const service = ordinal ? group.name : member.name;
    if (!DNS_LABEL.test(member.name) || memberService(member.name) !== service) {
      throw new Error(
        `kubernetes platform: group ${group.name}: member ${member.name}: allowed: a DNS label, either <group>-<ordinal> ` +
          `for every member (a StatefulSet) or a name not ending in -<number> (a pod of its own)`,
      );
    }
  }
  return ordinal;
}

const portName = (port: number) => `p${port}`;

/** A group's Secret and the hash of its data. */
interface GroupSecret {
  resource: k8s.core.v1.Secret;
  hash: pulumi.Output<string>;
}

export class KubernetesPlatform implements Platform {
  readonly hostNaming: HostNaming;
  private readonly namespace: pulumi.Output<string>;

  constructor(private readonly config: ClusterConfig, parent: pulumi.Resource) {
    if (!config.databaseImage) throw new Error("kubernetes platform: databaseImage is required (a pre-built image the cluster can pull)");
    const name = config.kubernetesNamespace;
    this.hostNaming = kubernetesHostNaming(name, memberService);
    const namespace = new k8s.core.v1.Namespace(name, { metadata: { name } }, { parent });
    // Through the resource's output, so that everything in it waits for it.
    this.namespace = namespace.metadata.name;
  }

  databaseImage(): pulumi.Input<string> {
    return this.config.databaseImage;
  }

  /**
   * In-cluster DNS name of the member's published Service (LoadBalancer or NodePort). From outside
   * the cluster, use the address in that Service's status (`kubectl get service <member>-public`).
   */
  clientEndpoint(member: string, port: WorkloadPort): string {
    const ns = this.config.kubernetesNamespace;
    if (port.publishedPort === undefined) return `${this.hostNaming.host(member)}:${port.port}`;
    return `${member}-public.${ns}.svc.cluster.local:${port.publishedPort}`;
  }

  deployGroup(group: WorkloadGroup, opts: DeployOptions): pulumi.Resource[] {
    const ordinal = isStatefulSet(group);
    // Members that share one pod template: all of a StatefulSet's, or one per Deployment.
    const templates = ordinal ? [group.members] : group.members.map((m) => [m]);
    const direct = templates.map((members) => (members.every(hasNoFiles) ? sharedCommand(members) : undefined));
    const secret = direct.some((command) => command === undefined) ? this.groupSecret(group, opts) : undefined;
    const resources: pulumi.Resource[] = secret ? [secret.resource] : [];

    if (ordinal) {
      resources.push(...this.statefulSet(group, direct[0], secret, opts));
    } else {
      group.members.forEach((member, i) => resources.push(...this.deployment(group, member, direct[i], secret, opts)));
    }
    return resources;
  }

  private meta(name: string, labels: Record<string, string>) {
    return { name, namespace: this.namespace, labels };
  }

  private groupLabels(group: WorkloadGroup): Record<string, string> {
    return { "app.kubernetes.io/part-of": this.config.clusterName, "app.kubernetes.io/component": group.name };
  }

  /** One Secret per group with every member's files and command; its data is a Pulumi secret. */
  private groupSecret(group: WorkloadGroup, opts: DeployOptions): GroupSecret {
    const data = pulumi.secret(
      pulumi.all(group.members.map((m) => pulumi.output(m.files))).apply((files) => memberSecretData(group.members, files as WorkloadFile[][])),
    );
    const resource = new k8s.core.v1.Secret(
      `${group.name}-files`,
      { metadata: this.meta(`${group.name}-files`, this.groupLabels(group)), type: "Opaque", stringData: data },
      { parent: opts.parent, deleteBeforeReplace: true },
    );
    // The wrapper reads the files once, at start: a changed hash in the pod template rolls the pods.
    const hash = data.apply((d) => createHash("sha256").update(JSON.stringify(d)).digest("hex"));
    return { resource, hash };
  }

  private statefulSet(
    group: WorkloadGroup,
    direct: string[] | undefined,
    secret: GroupSecret | undefined,
    opts: DeployOptions,
  ): pulumi.Resource[] {
    const labels = this.groupLabels(group);
    const headless = this.headlessService(group.name, group, labels, opts);
    const storage = this.storageSpec();
    const set = new k8s.apps.v1.StatefulSet(
      group.name,
      {
        metadata: this.meta(group.name, labels),
        spec: {
          serviceName: headless.metadata.name,
          replicas: group.members.length,
          // All members start together, as on docker: etcd forms its quorum only so, and Patroni's
          // members settle who bootstraps through etcd. (Rolling updates still go one pod at a time.)
          podManagementPolicy: "Parallel",
          selector: { matchLabels: labels },
          template: this.podTemplate(group, labels, direct, secret, {
            // Spread a group's members over nodes where the cluster has enough of them.
            affinity: {
              podAntiAffinity: {
                preferredDuringSchedulingIgnoredDuringExecution: [
                  { weight: 100, podAffinityTerm: { labelSelector: { matchLabels: labels }, topologyKey: "kubernetes.io/hostname" } },
                ],
              },
            },
          }),
          volumeClaimTemplates: group.volumePath ? [{ metadata: { name: "data" }, spec: storage }] : [],
        },
      },
      // A fixed name: a replacement (volumeClaimTemplates, selector, serviceName are immutable) must
      // delete the old set first. Its claims stay, so the members keep their data.
      { parent: opts.parent, dependsOn: opts.dependsOn, deleteBeforeReplace: true },
    );
    const resources: pulumi.Resource[] = [headless, set];
    if (group.members.length > 1) {
      // Voluntary disruptions (node drains) take one member of a group at a time.
      resources.push(
        new k8s.policy.v1.PodDisruptionBudget(
          group.name,
          { metadata: this.meta(group.name, labels), spec: { maxUnavailable: 1, selector: { matchLabels: labels } } },
          { parent: opts.parent, deleteBeforeReplace: true },
        ),
      );
    }
    group.members.forEach((member) => {
      const selector = { ...labels, "statefulset.kubernetes.io/pod-name": member.name };
      const published = this.publishedService(group, member, selector, opts);
      if (published) resources.push(published);
    });
    return resources;
  }

  private deployment(
    group: WorkloadGroup,
    member: WorkloadMember,
    direct: string[] | undefined,
    secret: GroupSecret | undefined,
    opts: DeployOptions,
  ): pulumi.Resource[] {
    const labels = { ...this.groupLabels(group), "dpc/member": member.name };
    const headless = this.headlessService(member.name, group, labels, opts);
    const claim = group.volumePath
      ? new k8s.core.v1.PersistentVolumeClaim(
          `${member.name}-data`,
          { metadata: this.meta(`${member.name}-data`, labels), spec: this.storageSpec() },
          { parent: opts.parent },
        )
      : undefined;
    const deployment = new k8s.apps.v1.Deployment(
      member.name,
      {
        metadata: this.meta(member.name, labels),
        spec: {
          replicas: 1,
          // Never two pods of one member (one hostname, one volume): the old one goes first.
          strategy: { type: "Recreate" },
          selector: { matchLabels: labels },
          template: this.podTemplate(group, labels, direct, secret, {
            // hostname + subdomain (= the headless Service) give the pod the DNS name the renderers use.
            hostname: member.name,
            subdomain: headless.metadata.name,
            volumes: claim ? [{ name: "data", persistentVolumeClaim: { claimName: claim.metadata.name } }] : [],
          }),
        },
      },
      { parent: opts.parent, dependsOn: opts.dependsOn, deleteBeforeReplace: true },
    );
    const published = this.publishedService(group, member, labels, opts);
    return [headless, ...(claim ? [claim] : []), deployment, ...(published ? [published] : [])];
  }

  /** Headless: DNS names for the pods themselves, published before they are ready (peers need them to bootstrap). */
  private headlessService(name: string, group: WorkloadGroup, selector: Record<string, string>, opts: DeployOptions) {
    return new k8s.core.v1.Service(
      name,
      {
        metadata: this.meta(name, this.groupLabels(group)),
        spec: {
          clusterIP: "None",
          publishNotReadyAddresses: true,
          selector,
          ports: group.ports.map((p) => ({ name: portName(p.port), port: p.port, targetPort: p.port })),
        },
      },
      { parent: opts.parent, deleteBeforeReplace: true },
    );
  }

  /** `<member>-public`: the member's published ports, for clients outside the cluster. */
  private publishedService(group: WorkloadGroup, member: WorkloadMember, selector: Record<string, string>, opts: DeployOptions) {
    const ports = group.ports.filter((p) => p.publishedPort !== undefined);
    if (ports.length === 0) return undefined;
    const name = `${member.name}-public`;
    return new k8s.core.v1.Service(
      name,
      {
        metadata: this.meta(name, this.groupLabels(group)),
        spec: {
          type: this.config.kubernetesServiceType,
          selector,
          ports: ports.map((p) => ({ name: portName(p.port), port: p.publishedPort!, targetPort: p.port })),
        },
      },
      { parent: opts.parent, deleteBeforeReplace: true },
    );
  }

  private storageSpec(): k8s.types.input.core.v1.PersistentVolumeClaimSpec {
    return {
      accessModes: ["ReadWriteOnce"],
      resources: { requests: { storage: this.config.kubernetesVolumeSize } },
      ...(this.config.kubernetesStorageClass ? { storageClassName: this.config.kubernetesStorageClass } : {}),
    };
  }

  private podTemplate(
    group: WorkloadGroup,
    labels: Record<string, string>,
    direct: string[] | undefined,
    secret: GroupSecret | undefined,
    extra: Partial<k8s.types.input.core.v1.PodSpec> & { volumes?: k8s.types.input.core.v1.Volume[] },
  ): k8s.types.input.core.v1.PodTemplateSpec {
    const { volumes: extraVolumes = [], ...extraSpec } = extra;
    const probe = (periodSeconds: number, failureThreshold: number) => ({
      exec: { command: group.healthcheck },
      periodSeconds,
      timeoutSeconds: 3,
      failureThreshold,
    });
    const mounts: k8s.types.input.core.v1.VolumeMount[] = group.volumePath ? [{ name: "data", mountPath: group.volumePath }] : [];
    const volumes: k8s.types.input.core.v1.Volume[] = [...extraVolumes];
    if (!direct) {
      mounts.push({ name: "files", mountPath: STAGING_DIR, readOnly: true }, { name: "config", mountPath: FILES_DIR });
      volumes.push(
        // Readable by the container's user only through fsGroup when the group names one; otherwise
        // by any user of this single-container pod (the image's user is unknown here). The installed
        // copies get the modes the files ask for.
        { name: "files", secret: { secretName: secret!.resource.metadata.name, defaultMode: group.runAs ? 0o440 : 0o444 } },
        // Writable for any user: the images do not have FILES_DIR, and most do not run as root.
        { name: "config", emptyDir: {} },
      );
    }
    const resources = group.resources
      ? { cpu: String(group.resources.cpus), memory: `${group.resources.memoryMb}Mi` }
      : undefined;
    return {
      metadata: { labels, ...(secret ? { annotations: { "dpc/files-sha256": secret.hash } } : {}) },
      spec: {
        ...extraSpec,
        // Nothing here talks to the Kubernetes API, and service links would add env vars (ETCD_* included).
        automountServiceAccountToken: false,
        enableServiceLinks: false,
        ...(group.runAs
          ? { securityContext: { runAsUser: group.runAs.uid, runAsGroup: group.runAs.gid, fsGroup: group.runAs.gid } }
          : {}),
        containers: [
          {
            name: "main",
            image: group.image,
            // MEMBER_WRAPPER has no `$(` or `$$`, so the kubelet's expansion leaves it as written.
            command: direct ?? ["/bin/sh", "-c", MEMBER_WRAPPER, "dpc-member", STAGING_DIR],
            env: direct ? [{ name: MEMBER_VAR, valueFrom: { fieldRef: { fieldPath: "metadata.name" } } }] : [],
            ports: group.ports.map((p) => ({ name: portName(p.port), containerPort: p.port })),
            volumeMounts: mounts,
            // requests = limits: the Guaranteed QoS class, the last to be evicted.
            ...(resources ? { resources: { requests: resources, limits: resources } } : {}),
            // As docker's healthcheck: failures count after startSeconds (plus 3 tries); liveness is
            // generous, as a restart of a PostgreSQL node costs more than a slow check.
            startupProbe: probe(5, Math.ceil((group.startSeconds ?? 10) / 5) + 3),
            readinessProbe: probe(5, 3),
            livenessProbe: probe(10, 12),
          },
        ],
        volumes,
      },
    };
  }
}

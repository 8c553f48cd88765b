// The Kubernetes platform: one namespace (Pod Security "restricted", ingress denied unless a group's
// policy admits it); per workload group, its pods, their Services, disruption budget and network policy,
// and one Secret holding every member's rendered files and command. The pieces, one idea a file:
// - kubernetes/naming.ts: StatefulSets for `<group>-<ordinal>` members (pod DNS names), Deployments
//   behind a ClusterIP Service for the others; the kind of process a group runs;
// - kubernetes/wrapper.ts: the pod command that picks its member's files from the group's Secret;
// - kubernetes/probes.ts: Patroni and etcd probed by meaning;
// - kubernetes/pod.ts: users, resources, /dev/shm, grace periods;
// - kubernetes/disruption.ts: update strategies, disruption budgets, the restart order of a group;
// - kubernetes/network-policy.ts: who may reach what;
// - kubernetes/deploy-step.ts: the password rotation (components/rotation-run.ts), the schema
//   migrations, the benchmark, the rollout (parameters and the Patroni pods' ordered restart,
//   components/rollout-run.ts) and the worker scaling (components/scaling-run.ts) as Jobs in the cluster.
// The database image is never built here: `databaseImage` names a pre-built one.
import { createHash } from "node:crypto";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { ClusterConfig } from "../spec.ts";
import type { HostNaming } from "../render/container.ts";
import type { DeployOptions, DeployStep, Platform, WorkloadFile, WorkloadGroup, WorkloadMember, WorkloadPort } from "./types.ts";
import { FILES_DIR, FILES_INSTALLER, MEMBER_VAR, MEMBER_WRAPPER, STAGING_DIR, memberSecretData, sharedCommand } from "./kubernetes/wrapper.ts";
import { KIND_LABEL, isStatefulSet, kindOf, kubernetesNaming, podsService, type Kind } from "./kubernetes/naming.ts";
import { probesFor } from "./kubernetes/probes.ts";
import { containerSecurityContext, podSecurityContext, resourcesFor, runAsFor, shmSizeMb, terminationGraceSeconds } from "./kubernetes/pod.ts";
import { disruptionBudget, statefulSetUpdateStrategy } from "./kubernetes/disruption.ts";
import { denyAllIngress, networkPolicySpec, parseSourceRanges } from "./kubernetes/network-policy.ts";
import {
  INPUT_FILE,
  readStepResult,
  resultWriterRules,
  rolloutRules,
  scalingRules,
  stepEgressPolicySpec,
  stepJobSpec,
  stepKind,
  stepObjectNames,
  stepSharedName,
  type StepKind,
} from "./kubernetes/deploy-step.ts";

export * from "./kubernetes/wrapper.ts";
export { isStatefulSet, kindOf, kubernetesNaming, memberService } from "./kubernetes/naming.ts";

const portName = (port: number) => `p${port}`;

/** Pulumi's kubernetes provider: do not wait for this object to become ready (a claim binds with its first pod). */
const SKIP_AWAIT = { "pulumi.com/skipAwait": "true" };

/** A group's Secret and the hash of its data. */
interface GroupSecret {
  resource: k8s.core.v1.Secret;
  hash: pulumi.Output<string>;
}

const hasNoFiles = (member: WorkloadMember) =>
  Array.isArray(member.files) && member.files.length === 0 && Object.keys(member.env ?? {}).length === 0;

/** dependsOn as a list, to add to it. */
function dependencies(dependsOn: DeployOptions["dependsOn"]): pulumi.Input<pulumi.Resource>[] {
  if (dependsOn === undefined) return [];
  return Array.isArray(dependsOn) ? dependsOn : [dependsOn as pulumi.Input<pulumi.Resource>];
}

export class KubernetesPlatform implements Platform {
  readonly hostNaming: HostNaming;
  private readonly namespace: pulumi.Output<string>;
  private readonly sourceRanges: string[];
  /** Per kind of step, its ServiceAccount and egress policy, declared with the first step of that kind. */
  private readonly stepShared = new Map<StepKind, { serviceAccount: k8s.core.v1.ServiceAccount; egress: k8s.networking.v1.NetworkPolicy }>();
  /** Per StatefulSet updating OnDelete (the Patroni groups), the digest of its pod template's inputs. */
  private readonly templateDigests = new Map<string, pulumi.Output<string>>();

  constructor(private readonly config: ClusterConfig, private readonly parent: pulumi.Resource) {
    if (!config.databaseImage) throw new Error("kubernetes platform: databaseImage is required (a pre-built image the cluster can pull)");
    const name = config.kubernetesNamespace;
    this.hostNaming = kubernetesNaming(name);
    this.sourceRanges = parseSourceRanges(config.kubernetesSourceRanges);
    const namespace = new k8s.core.v1.Namespace(
      name,
      {
        metadata: {
          name,
          // Every pod here runs as the "restricted" profile requires; the API server refuses any that does not.
          labels: { "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest" },
        },
      },
      // Deleting a namespace deletes every claim in it: kept with the data (retainDataOnDestroy).
      { parent, retainOnDelete: config.retainDataOnDestroy },
    );
    // Through the resource's output, so that everything in it waits for it.
    this.namespace = namespace.metadata.name;
    new k8s.networking.v1.NetworkPolicy(
      `${config.clusterName}-deny-ingress`,
      { metadata: this.meta(`${config.clusterName}-deny-ingress`, { "app.kubernetes.io/part-of": config.clusterName }), spec: denyAllIngress() },
      { parent },
    );
  }

  databaseImage(): pulumi.Input<string> {
    return this.config.databaseImage;
  }

  /**
   * In-cluster address of a member's port: the pod's DNS name (StatefulSet members) or the member's
   * ClusterIP Service. From outside the cluster, the `<member>-public` Service's address (when
   * kubernetesServiceType publishes one) and the port's publishedPort.
   */
  clientEndpoint(member: string, port: WorkloadPort): string {
    return `${this.hostNaming.host(member)}:${port.port}`;
  }

  /**
   * Runs `step` as a Job of the deploy-steps image in the namespace, after `opts.dependsOn` (the
   * groups and the router) and returns the result it wrote to its ConfigMap. Pulumi's provider awaits
   * the Job's completion (and fails `pulumi up` when the Job fails); a new trigger replaces the Job, which
   * runs the step again; a Job that failed is replaced on the next `pulumi up` (replaceUnready).
   */
  runDeployStep(step: DeployStep, opts: DeployOptions): pulumi.Output<Record<string, unknown>> {
    const names = stepObjectNames(step.name);
    const labels = { "app.kubernetes.io/part-of": this.config.clusterName, "app.kubernetes.io/component": step.name };
    const kind = stepKind(step.step);
    const shared = this.deployStepShared(kind);
    const input = new k8s.core.v1.Secret(
      names.input,
      {
        metadata: this.meta(names.input, labels),
        type: "Opaque",
        stringData: pulumi.secret(pulumi.output(step.input).apply((value) => ({ [INPUT_FILE]: JSON.stringify(value) }))),
      },
      { parent: opts.parent, deleteBeforeReplace: true },
    );
    // Declared here, written by the step: its data is the step's, never Pulumi's.
    const result = new k8s.core.v1.ConfigMap(
      names.result,
      { metadata: this.meta(names.result, labels), data: {} },
      { parent: opts.parent, ignoreChanges: ["data"], deleteBeforeReplace: true },
    );
    const role = new k8s.rbac.v1.Role(
      names.role,
      { metadata: this.meta(names.role, labels), rules: resultWriterRules(names.result) },
      { parent: opts.parent, deleteBeforeReplace: true },
    );
    const binding = new k8s.rbac.v1.RoleBinding(
      names.role,
      {
        metadata: this.meta(names.role, labels),
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: role.metadata.name },
        subjects: [{ kind: "ServiceAccount", name: shared.serviceAccount.metadata.name, namespace: this.namespace }],
      },
      { parent: opts.parent, deleteBeforeReplace: true },
    );
    // The rollout's own Role: the Patroni StatefulSets and their pods (rolloutRules); the scaling
    // step's: the going worker StatefulSets' scale (scalingRules); each bound to its kind's own
    // ServiceAccount only.
    const podsRules = [...(step.restarts ? rolloutRules(step.restarts) : []), ...(step.scales && step.scales.length > 0 ? scalingRules(step.scales) : [])];
    const podsBinding = podsRules.length > 0
      ? [
          new k8s.rbac.v1.RoleBinding(
            names.podsRole,
            {
              metadata: this.meta(names.podsRole, labels),
              roleRef: {
                apiGroup: "rbac.authorization.k8s.io",
                kind: "Role",
                name: new k8s.rbac.v1.Role(
                  names.podsRole,
                  { metadata: this.meta(names.podsRole, labels), rules: podsRules },
                  { parent: opts.parent, deleteBeforeReplace: true },
                ).metadata.name,
              },
              subjects: [{ kind: "ServiceAccount", name: shared.serviceAccount.metadata.name, namespace: this.namespace }],
            },
            { parent: opts.parent, deleteBeforeReplace: true },
          ),
        ]
      : [];
    // A digest; it stays secret when computed from passwords (as the group files' hash does). An
    // empty one would never change: the step would run once and never again.
    const trigger = pulumi.output(step.trigger).apply((t) => {
      if (!t) throw new Error(`deploy step ${step.name}: no trigger (a step whose input holds passwords needs the generated trigger key)`);
      return t;
    });
    const job = new k8s.batch.v1.Job(
      step.name,
      {
        // Auto-named (<name>-<suffix>): a new run is created before the old Job is deleted.
        metadata: { namespace: this.namespace, labels, annotations: { "pulumi.com/replaceUnready": "true" } },
        spec: pulumi.all([trigger, input.metadata.name, result.metadata.name, shared.serviceAccount.metadata.name]).apply(
          ([t, inputName, resultName, account]) =>
            stepJobSpec({
              step: step.step,
              kind,
              image: this.config.deployStepsImage,
              labels,
              serviceAccountName: account,
              inputSecretName: inputName,
              resultConfigMapName: resultName,
              trigger: t,
              timeoutSeconds: step.timeoutSeconds,
              runAs: { uid: this.config.kubernetesPostgresUid, gid: this.config.kubernetesPostgresGid },
            }),
        ),
      },
      {
        parent: opts.parent,
        dependsOn: [...dependencies(opts.dependsOn), input, result, binding, ...podsBinding, shared.egress],
        // A Job's template is immutable: any change is a new run.
        replaceOnChanges: ["spec"],
        // The provider waits 10 minutes by default; the Job's own deadline decides, plus scheduling slack.
        customTimeouts: { create: `${step.timeoutSeconds + 300}s`, update: `${step.timeoutSeconds + 300}s` },
      },
    );
    // Read once the Job has completed (its name is known only then): the step's result.
    const id = pulumi.all([this.namespace, result.metadata.name, job.metadata.name]).apply(([ns, name]) => `${ns}/${name}`);
    const written = k8s.core.v1.ConfigMap.get(`${names.result}-read`, id, { parent: opts.parent, dependsOn: [job] });
    // The result is the ConfigMap's (not secret), though the trigger it is checked against may be.
    return pulumi.unsecret(pulumi.all([written.data, trigger]).apply(([data, t]) => readStepResult(step.name, data, t)));
  }

  /** The ServiceAccount the pods of a kind of step run as, and the policy that limits where they connect. */
  private deployStepShared(kind: StepKind) {
    const parent = this.parent;
    let shared = this.stepShared.get(kind);
    if (!shared) {
      const name = stepSharedName(this.config.clusterName, kind);
      const labels = { "app.kubernetes.io/part-of": this.config.clusterName };
      shared = {
        serviceAccount: new k8s.core.v1.ServiceAccount(
          name,
          { metadata: this.meta(name, labels), automountServiceAccountToken: false },
          { parent, deleteBeforeReplace: true },
        ),
        egress: new k8s.networking.v1.NetworkPolicy(
          name,
          { metadata: this.meta(name, labels), spec: stepEgressPolicySpec(this.config.clusterName, kind) },
          { parent, deleteBeforeReplace: true },
        ),
      };
      this.stepShared.set(kind, shared);
    }
    return shared;
  }

  /**
   * The digest of a Patroni group's pod template as the program declares it (image, files' hash,
   * command, resources, probes, ...): what makes its pods outdated. Known in a preview whenever the
   * template is; secret when the template holds a secret's hash. undefined for any other group.
   */
  podTemplateDigest(group: string): pulumi.Output<string> | undefined {
    return this.templateDigests.get(group);
  }

  deployGroup(group: WorkloadGroup, opts: DeployOptions): pulumi.Resource[] {
    const kind = kindOf(this.config.clusterName, group.name);
    const ordinal = isStatefulSet(group);
    // Members that share one pod template: all of a StatefulSet's, or one per Deployment.
    const templates = ordinal ? [group.members] : group.members.map((m) => [m]);
    const direct = templates.map((members) => (group.shell === false ? this.shellLessCommand(group, members) : members.every(hasNoFiles) ? sharedCommand(members) : undefined));
    // Without a shell the files come through an init container (podTemplate), still from the Secret.
    const needsFiles = group.shell === false ? !group.members.every(hasNoFiles) : direct.some((command) => command === undefined);
    const secret = needsFiles ? this.groupSecret(group, opts) : undefined;
    const resources: pulumi.Resource[] = secret ? [secret.resource] : [];

    if (ordinal) {
      resources.push(...this.statefulSet(group, kind, direct[0], secret, opts));
    } else {
      group.members.forEach((member, i) => resources.push(...this.deployment(group, kind, member, direct[i], secret, opts)));
    }
    resources.push(this.networkPolicy(group, kind, opts));
    return resources;
  }

  /** The shared command of a group whose image has no shell; throws when the members' commands cannot share one. */
  private shellLessCommand(group: WorkloadGroup, members: WorkloadMember[]): string[] {
    const command = sharedCommand(members);
    if (!command) throw new Error(`kubernetes platform: group ${group.name}: its image has no shell, so its members' commands must differ only by their names`);
    return command;
  }

  private meta(name: string, labels: Record<string, string>, annotations?: Record<string, string>) {
    return { name, namespace: this.namespace, labels, ...(annotations ? { annotations } : {}) };
  }

  /** The labels that select a group's pods (immutable in a StatefulSet's selector: never change them). */
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
    // The wrapper reads the files once, at start: a changed hash in the pod template makes the pods
    // outdated (restarted by RollingUpdate, or by hand under OnDelete).
    const hash = data.apply((d) => createHash("sha256").update(JSON.stringify(d)).digest("hex"));
    return { resource, hash };
  }

  private statefulSet(
    group: WorkloadGroup,
    kind: Kind,
    direct: string[] | undefined,
    secret: GroupSecret | undefined,
    opts: DeployOptions,
  ): pulumi.Resource[] {
    const labels = this.groupLabels(group);
    const headless = this.headlessService(group, labels, opts);
    // The members' claims, declared here rather than left to the StatefulSet's template: a claim's size
    // can grow in place (when its StorageClass allows expansion), while the template is immutable. The
    // StatefulSet controller uses an existing claim named <template>-<set>-<ordinal>.
    const claims = group.volumePath
      ? group.members.map(
          (member) =>
            new k8s.core.v1.PersistentVolumeClaim(
              `data-${member.name}`,
              { metadata: this.meta(`data-${member.name}`, labels, SKIP_AWAIT), spec: this.storageSpec() },
              // The data outlives the stack (retainDataOnDestroy, default true); a claim's class cannot change.
              { parent: opts.parent, retainOnDelete: this.config.retainDataOnDestroy, ignoreChanges: ["spec.storageClassName"] },
            ),
        )
      : [];
    const template = this.podTemplate(group, kind, labels, direct, secret, {});
    const updateStrategy = statefulSetUpdateStrategy(kind);
    if (updateStrategy.type === "OnDelete") {
      this.templateDigests.set(
        group.name,
        pulumi.output(template).apply((t) => createHash("sha256").update(JSON.stringify(t)).digest("hex")),
      );
    }
    const set = new k8s.apps.v1.StatefulSet(
      group.name,
      {
        metadata: this.meta(group.name, labels),
        spec: {
          serviceName: headless.metadata.name,
          replicas: group.members.length,
          // All members start together, as on docker: etcd forms its quorum only so, and Patroni's
          // members settle who bootstraps through etcd.
          podManagementPolicy: "Parallel",
          updateStrategy,
          selector: { matchLabels: labels },
          template,
          volumeClaimTemplates: group.volumePath ? [{ metadata: { name: "data" }, spec: this.storageSpec() }] : [],
          // The claims are Pulumi's (above): the StatefulSet controller never deletes them, whether
          // the set is deleted or scaled down (Kubernetes' default, stated; a mutable field).
          persistentVolumeClaimRetentionPolicy: { whenDeleted: "Retain", whenScaled: "Retain" },
        },
      },
      {
        parent: opts.parent,
        dependsOn: [...dependencies(opts.dependsOn), ...claims],
        // The template's size and class are only what a new claim would get: the claims above are
        // what counts. Without this a size change would replace the StatefulSet (an immutable field).
        ignoreChanges: ["spec.volumeClaimTemplates"],
        // A fixed name: a replacement (selector, serviceName are immutable) deletes the old set first.
        deleteBeforeReplace: true,
      },
    );
    const resources: pulumi.Resource[] = [headless, ...claims, set];
    const budget = this.disruptionBudget(group, kind, labels, group.members.length, opts);
    if (budget) resources.push(budget);
    group.members.forEach((member) => {
      const published = this.publishedService(group, member, { ...labels, "statefulset.kubernetes.io/pod-name": member.name }, opts);
      if (published) resources.push(published);
    });
    return resources;
  }

  private deployment(
    group: WorkloadGroup,
    kind: Kind,
    member: WorkloadMember,
    direct: string[] | undefined,
    secret: GroupSecret | undefined,
    opts: DeployOptions,
  ): pulumi.Resource[] {
    const labels = { ...this.groupLabels(group), "dpc/member": member.name };
    const service = this.memberService(group, member, labels, opts);
    const claim = group.volumePath
      ? new k8s.core.v1.PersistentVolumeClaim(
          `${member.name}-data`,
          { metadata: this.meta(`${member.name}-data`, labels), spec: this.storageSpec() },
          { parent: opts.parent, retainOnDelete: this.config.retainDataOnDestroy },
        )
      : undefined;
    // The client path (HAProxy, PgBouncer) runs several identical pods; anything else one.
    const replicas = kind === "haproxy" || kind === "pgbouncer" ? this.config.kubernetesRouterReplicas : 1;
    const deployment = new k8s.apps.v1.Deployment(
      member.name,
      {
        metadata: this.meta(member.name, labels),
        spec: {
          replicas,
          // A pod with a volume (ReadWriteOnce) must stop before the next starts; the others start a
          // new pod and wait for it to be ready before stopping an old one.
          strategy: claim ? { type: "Recreate" } : { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
          selector: { matchLabels: labels },
          template: this.podTemplate(group, kind, labels, direct, secret, {
            // MEMBER_WRAPPER finds the member's files by $HOSTNAME.
            hostname: member.name,
            volumes: claim ? [{ name: "data", persistentVolumeClaim: { claimName: claim.metadata.name } }] : [],
          }),
        },
      },
      { parent: opts.parent, dependsOn: opts.dependsOn, deleteBeforeReplace: true },
    );
    const resources: pulumi.Resource[] = [service, ...(claim ? [claim] : []), deployment];
    // PgBouncer's pods each keep their own pools: the rotation logs in at every one of them.
    if (kind === "pgbouncer") resources.push(this.podsService(group, member, labels, opts));
    const budget = this.disruptionBudget(group, kind, labels, replicas, opts, member.name);
    if (budget) resources.push(budget);
    const published = this.publishedService(group, member, labels, opts);
    if (published) resources.push(published);
    return resources;
  }

  /** Headless: DNS names for the pods themselves, published before they are ready (peers need them to bootstrap). */
  private headlessService(group: WorkloadGroup, selector: Record<string, string>, opts: DeployOptions) {
    return new k8s.core.v1.Service(
      group.name,
      {
        metadata: this.meta(group.name, this.groupLabels(group)),
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

  /**
   * `<member>-pods` (naming.ts podsService): headless, over the member's ready pods only, so that its
   * DNS answer is the address of every pod that serves (rotation step 3, components/rotation/step.ts).
   */
  private podsService(group: WorkloadGroup, member: WorkloadMember, selector: Record<string, string>, opts: DeployOptions) {
    const name = podsService(member.name);
    return new k8s.core.v1.Service(
      name,
      {
        metadata: this.meta(name, this.groupLabels(group)),
        spec: {
          clusterIP: "None",
          publishNotReadyAddresses: false,
          selector,
          ports: group.ports.map((p) => ({ name: portName(p.port), port: p.port, targetPort: p.port })),
        },
      },
      { parent: opts.parent, deleteBeforeReplace: true },
    );
  }

  /**
   * `<member>`: a ClusterIP Service over the member's ready pods. Its address is the member's address
   * in every rendered file, and stays put while pods come and go.
   */
  private memberService(group: WorkloadGroup, member: WorkloadMember, selector: Record<string, string>, opts: DeployOptions) {
    return new k8s.core.v1.Service(
      member.name,
      {
        metadata: this.meta(member.name, this.groupLabels(group)),
        spec: {
          type: "ClusterIP",
          selector,
          ports: group.ports.map((p) => ({ name: portName(p.port), port: p.port, targetPort: p.port })),
        },
      },
      { parent: opts.parent, deleteBeforeReplace: true },
    );
  }

  /**
   * `<member>-public`: the member's published ports, only when kubernetesServiceType asks for
   * LoadBalancer or NodePort, admitted from kubernetesSourceRanges only.
   */
  private publishedService(group: WorkloadGroup, member: WorkloadMember, selector: Record<string, string>, opts: DeployOptions) {
    const ports = group.ports.filter((p) => p.publishedPort !== undefined);
    const type = this.config.kubernetesServiceType;
    if (ports.length === 0 || type === "ClusterIP") return undefined;
    const name = `${member.name}-public`;
    return new k8s.core.v1.Service(
      name,
      {
        // Pulumi would wait for a LoadBalancer's external address, which never comes without a
        // load-balancer controller; nothing in the stack reads it (kubectl shows it).
        metadata: this.meta(name, this.groupLabels(group), SKIP_AWAIT),
        spec: {
          type,
          selector,
          ports: ports.map((p) => ({ name: portName(p.port), port: p.publishedPort!, targetPort: p.port })),
          // The client's own address reaches the pod, so that the NetworkPolicy's source ranges apply.
          externalTrafficPolicy: "Local",
          ...(type === "LoadBalancer" ? { loadBalancerSourceRanges: this.sourceRanges } : {}),
        },
      },
      { parent: opts.parent, deleteBeforeReplace: true },
    );
  }

  private disruptionBudget(group: WorkloadGroup, kind: Kind, selector: Record<string, string>, pods: number, opts: DeployOptions, name = group.name) {
    const budget = disruptionBudget(kind, pods);
    if (!budget) return undefined;
    return new k8s.policy.v1.PodDisruptionBudget(
      name,
      { metadata: this.meta(name, this.groupLabels(group)), spec: { ...budget, selector: { matchLabels: selector } } },
      { parent: opts.parent, deleteBeforeReplace: true },
    );
  }

  private networkPolicy(group: WorkloadGroup, kind: Kind, opts: DeployOptions) {
    const published = this.config.kubernetesServiceType === "ClusterIP" ? undefined : { sourceRanges: this.sourceRanges };
    return new k8s.networking.v1.NetworkPolicy(
      group.name,
      {
        metadata: this.meta(group.name, this.groupLabels(group)),
        spec: networkPolicySpec(this.config.clusterName, kind, this.groupLabels(group), group.ports, published),
      },
      { parent: opts.parent, deleteBeforeReplace: true },
    );
  }

  /** The init container that installs a shell-less group's files (FILES_INSTALLER, in the database image). */
  private filesInstaller(): k8s.types.input.core.v1.Container {
    return {
      name: "files",
      image: this.config.databaseImage,
      command: ["/bin/sh", "-c", FILES_INSTALLER, "dpc-files", STAGING_DIR],
      volumeMounts: [
        { name: "files", mountPath: STAGING_DIR, readOnly: true },
        { name: "config", mountPath: FILES_DIR },
      ],
      resources: { requests: { cpu: "50m", memory: "32Mi" }, limits: { cpu: "50m", memory: "32Mi" } },
      securityContext: containerSecurityContext(),
    };
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
    kind: Kind,
    labels: Record<string, string>,
    direct: string[] | undefined,
    secret: GroupSecret | undefined,
    extra: Partial<k8s.types.input.core.v1.PodSpec> & { volumes?: k8s.types.input.core.v1.Volume[] },
  ): k8s.types.input.core.v1.PodTemplateSpec {
    const { volumes: extraVolumes = [], ...extraSpec } = extra;
    const mounts: k8s.types.input.core.v1.VolumeMount[] = group.volumePath ? [{ name: "data", mountPath: group.volumePath }] : [];
    const volumes: k8s.types.input.core.v1.Volume[] = [...extraVolumes];
    // An image without a shell whose members have files: an init container of the database image
    // installs them into FILES_DIR (an emptyDir), where the main container reads them.
    const installer = direct && secret ? this.filesInstaller() : undefined;
    if (installer) {
      mounts.push({ name: "config", mountPath: FILES_DIR, readOnly: true });
      volumes.push(
        { name: "files", secret: { secretName: secret!.resource.metadata.name, defaultMode: 0o440 } },
        { name: "config", emptyDir: {} },
      );
    }
    if (!direct) {
      mounts.push({ name: "files", mountPath: STAGING_DIR, readOnly: true }, { name: "config", mountPath: FILES_DIR });
      volumes.push(
        // Readable by the pod's user through fsGroup; the installed copies get the modes the files ask for.
        { name: "files", secret: { secretName: secret!.resource.metadata.name, defaultMode: 0o440 } },
        // Writable by the pod's user (fsGroup): the images do not have FILES_DIR.
        { name: "config", emptyDir: {} },
      );
    }
    if (kind === "database") {
      // PostgreSQL's dynamic shared memory (parallel HNSW builds) lives in /dev/shm: 64 MiB in a
      // container unless a memory-backed volume replaces it.
      mounts.push({ name: "shm", mountPath: "/dev/shm" });
      volumes.push({ name: "shm", emptyDir: { medium: "Memory", sizeLimit: `${shmSizeMb(this.config)}Mi` } });
    }
    const resources = resourcesFor(kind, group);
    const runAs = runAsFor(kind, group, this.config);
    // Spread a group's pods over nodes where the cluster has enough of them.
    const spread = {
      podAntiAffinity: {
        preferredDuringSchedulingIgnoredDuringExecution: [
          { weight: 100, podAffinityTerm: { labelSelector: { matchLabels: this.groupLabels(group) }, topologyKey: "kubernetes.io/hostname" } },
        ],
      },
    };
    return {
      metadata: { labels: { ...labels, [KIND_LABEL]: kind }, ...(secret ? { annotations: { "dpc/files-sha256": secret.hash } } : {}) },
      spec: {
        ...extraSpec,
        affinity: spread,
        // Nothing here talks to the Kubernetes API, and service links would add env vars (ETCD_* included).
        automountServiceAccountToken: false,
        enableServiceLinks: false,
        securityContext: podSecurityContext(runAs),
        terminationGracePeriodSeconds: terminationGraceSeconds(kind, this.config),
        ...(installer ? { initContainers: [installer] } : {}),
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
            resources: { requests: resources, limits: resources },
            securityContext: containerSecurityContext(),
            ...probesFor(kind, group, this.config.kubernetesVolumeSize),
          },
        ],
        volumes,
      },
    };
  }
}

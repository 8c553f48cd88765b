// Every Kubernetes object the program registers (under mocks), validated against the Kubernetes API
// schemas (kubernetes-models), and read for what a real cluster would refuse or regret: Pod Security
// "restricted", resources on every container, /dev/shm, grace periods, claims that can grow, and the
// HAProxy config that must start where no pod name resolves.
import test from "ava";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Namespace } from "kubernetes-models/v1/Namespace";
import { Service } from "kubernetes-models/v1/Service";
import { Secret } from "kubernetes-models/v1/Secret";
import { PersistentVolumeClaim } from "kubernetes-models/v1/PersistentVolumeClaim";
import { StatefulSet } from "kubernetes-models/apps/v1/StatefulSet";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import { Job } from "kubernetes-models/batch/v1/Job";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import { Role } from "kubernetes-models/rbac.authorization.k8s.io/v1/Role";
import { RoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding";
import { byType, registrations } from "./_pulumi-harness.ts";
import {
  DATABASE_GROUPS,
  TYPES,
  container,
  k8sName,
  loadKubernetesStack,
  manifests,
  membersOf,
  named,
  podSpec,
  resourceOptions,
  secretData,
  spec,
} from "./_kubernetes-stack.ts";
import { shmSizeMb } from "../../components/platform/kubernetes/pod.ts";
import { parseClusterConfig } from "../../components/spec.ts";

const MODELS: Record<string, new (data: any) => { validate(): void }> = {
  "v1/Namespace": Namespace,
  "v1/Service": Service,
  "v1/Secret": Secret,
  "v1/PersistentVolumeClaim": PersistentVolumeClaim,
  "apps/v1/StatefulSet": StatefulSet,
  "apps/v1/Deployment": Deployment,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "networking.k8s.io/v1/NetworkPolicy": NetworkPolicy,
  "batch/v1/Job": Job,
  "v1/ConfigMap": ConfigMap,
  "v1/ServiceAccount": ServiceAccount,
  "rbac.authorization.k8s.io/v1/Role": Role,
  "rbac.authorization.k8s.io/v1/RoleBinding": RoleBinding,
};

test.before(async () => {
  await loadKubernetesStack();
});

test("every registered manifest passes the Kubernetes API schema of its kind", (t) => {
  const all = manifests();
  const counts: Record<string, number> = {};
  for (const manifest of all) {
    const kind = `${manifest.apiVersion}/${manifest.kind}`;
    const Model = MODELS[kind];
    t.truthy(Model, `a schema for ${kind}`);
    t.notThrows(() => new Model(manifest).validate(), `${kind} ${manifest.metadata?.name}`);
    counts[kind] = (counts[kind] ?? 0) + 1;
  }
  t.log(`${all.length} objects: ${JSON.stringify(counts)}`);
  // The seed topology: 8 StatefulSets (etcd, coordinator, 6 workers), 20 Patroni + 3 etcd claims, ...
  t.is(counts["apps/v1/StatefulSet"], 8);
  t.is(counts["v1/PersistentVolumeClaim"], 3 + 3 + 6 * 2 + 1, "one claim per etcd and Patroni member, and Prometheus's");
  t.is(counts["networking.k8s.io/v1/NetworkPolicy"], 1 + 8 + 6 + 3, "deny-all, one per StatefulSet, one per other group, the deploy steps', the rollout step's and the scaling step's egress");
  // The deploy steps: a Job, its input Secret, its result ConfigMap and the Role (and binding) that
  // lets it write that one ConfigMap, for the rotation, the rollout, the schema, the scaling and the
  // benchmark; the rollout's and the scaling's second Role (the StatefulSets and pods they act on);
  // three ServiceAccounts (the rollout's and the scaling's own).
  t.is(counts["batch/v1/Job"], 5);
  t.is(counts["v1/ConfigMap"], 5);
  t.deepEqual([counts["v1/ServiceAccount"], counts["rbac.authorization.k8s.io/v1/Role"], counts["rbac.authorization.k8s.io/v1/RoleBinding"]], [3, 7, 7]);
  t.is(all.length, registrations.filter((r) => r.type.startsWith("kubernetes:")).length);
  // The schema check is real: a wrong type is refused.
  t.throws(() => new StatefulSet({ ...all.find((m) => m.kind === "StatefulSet"), spec: { ...all.find((m) => m.kind === "StatefulSet")!.spec, replicas: "3" } } as any).validate());
});

const workloads = () => [...byType(TYPES.statefulSet), ...byType(TYPES.deployment), ...byType(TYPES.job)];

test("Pod Security restricted: every pod non-root with a seccomp profile, every container without privilege escalation or capabilities", (t) => {
  t.is((named(TYPES.namespace, "dpc").inputs.metadata as any).labels["pod-security.kubernetes.io/enforce"], "restricted");
  const allowedVolumes = new Set(["configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"]);
  for (const workload of workloads()) {
    const pod = podSpec(workload);
    const name = k8sName(workload);
    t.true(pod.securityContext.runAsNonRoot, name);
    t.true(pod.securityContext.runAsUser > 0, name);
    t.deepEqual(pod.securityContext.seccompProfile, { type: "RuntimeDefault" }, name);
    t.is(pod.securityContext.fsGroupChangePolicy, "OnRootMismatch", name);
    t.falsy(pod.hostNetwork || pod.hostPID || pod.hostIPC, name);
    for (const volume of pod.volumes ?? []) {
      const type = Object.keys(volume).find((k) => k !== "name")!;
      t.true(allowedVolumes.has(type), `${name}: volume ${volume.name} of type ${type}`);
    }
    for (const c of pod.containers) {
      t.deepEqual(c.securityContext, { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } }, name);
      t.falsy(c.securityContext.privileged);
    }
  }
  // The database pods run as the image's postgres (the Citus image's 999): the entrypoint takes its
  // unprivileged branch and chowns nothing; fsGroup makes the volume theirs.
  for (const group of DATABASE_GROUPS) {
    t.like(podSpec(named(TYPES.statefulSet, group)).securityContext, { runAsUser: 999, runAsGroup: 999, fsGroup: 999 });
  }
  t.like(podSpec(named(TYPES.statefulSet, "dpc-etcd")).securityContext, { runAsUser: 65534, fsGroup: 65534 });
  t.like(podSpec(named(TYPES.deployment, "dpc-haproxy")).securityContext, { runAsUser: 99, fsGroup: 99 });
  // The deploy steps run as the database image's postgres too (their image is built on it).
  for (const job of byType(TYPES.job)) t.like(podSpec(job).securityContext, { runAsUser: 999, runAsGroup: 999, fsGroup: 999 });
});

test("resources on every container, requests = limits (Guaranteed)", (t) => {
  const seen: Record<string, unknown> = {};
  for (const workload of workloads()) {
    const { resources } = container(workload);
    t.truthy(resources?.requests?.cpu && resources?.requests?.memory, k8sName(workload));
    t.deepEqual(resources.requests, resources.limits, k8sName(workload));
    seen[k8sName(workload)] = resources.limits;
  }
  t.deepEqual(seen["dpc-coordinator"], { cpu: "1", memory: "2048Mi" });
  t.deepEqual(seen["dpc-etcd"], { cpu: "500m", memory: "512Mi" });
  t.deepEqual(seen["dpc-haproxy"], { cpu: "500m", memory: "256Mi" });
  t.deepEqual(seen["dpc-pgbouncer"], { cpu: "500m", memory: "256Mi" });
  t.deepEqual(seen["dpc-schema"], { cpu: "1", memory: "1024Mi" });
  t.deepEqual(seen["dpc-benchmark"], { cpu: "1", memory: "1024Mi" });
});

test("PostgreSQL pods: a memory-backed /dev/shm of maintenance_work_mem + 64 MiB, and five minutes to shut down", (t) => {
  // databaseMemoryMb 2048: maintenance_work_mem = 512MB (a quarter); 512 + 64.
  t.is(shmSizeMb(parseClusterConfig({ databaseMemoryMb: 2048 })), 576);
  t.is(shmSizeMb(parseClusterConfig({ databaseMemoryMb: 16384 })), 2048 + 64, "maintenance_work_mem is capped at 2 GB");
  for (const group of DATABASE_GROUPS) {
    const pod = podSpec(named(TYPES.statefulSet, group));
    t.deepEqual(pod.volumes.find((v: any) => v.name === "shm"), { name: "shm", emptyDir: { medium: "Memory", sizeLimit: "576Mi" } });
    t.true(container(named(TYPES.statefulSet, group)).volumeMounts.some((m: any) => m.name === "shm" && m.mountPath === "/dev/shm"));
    t.is(pod.terminationGracePeriodSeconds, 300);
  }
  t.is(podSpec(named(TYPES.statefulSet, "dpc-etcd")).terminationGracePeriodSeconds, 60);
  t.false(podSpec(named(TYPES.deployment, "dpc-haproxy")).volumes.some((v: any) => v.name === "shm"));
});

test("volumes grow without replacing a StatefulSet: a claim per member, declared before the set, kept on delete; the template ignored", (t) => {
  for (const set of byType(TYPES.statefulSet)) {
    const members = membersOf(set);
    const claims = members.map((m) => named(TYPES.claim, `data-${m}`));
    for (const claim of claims) {
      t.deepEqual(spec(claim), { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "10Gi" } } });
      t.is((claim.inputs.metadata as any).annotations["pulumi.com/skipAwait"], "true");
      t.like(resourceOptions.get(claim.urn), { ignoreChanges: ["spec.storageClassName"], retainOnDelete: true });
      // The StatefulSet controller adopts the claim named <template>-<set>-<ordinal>: it must exist first.
      t.true(set.dependencies.includes(claim.urn), `${k8sName(set)} waits for ${k8sName(claim)}`);
    }
    t.is(spec(set).volumeClaimTemplates[0].metadata.name, "data");
    t.deepEqual(resourceOptions.get(set.urn)?.ignoreChanges, ["spec.volumeClaimTemplates"]);
  }
});

test("the group Secrets hold what the pods need; etcd's main container (no shell) never mounts its Secret, only its init container", (t) => {
  t.truthy(secretData("dpc-coordinator")["dpc-coordinator-0__patroni.yml"]);
  const etcd = podSpec(named(TYPES.statefulSet, "dpc-etcd"));
  const secretVolumes = etcd.volumes.filter((v: any) => v.secret).map((v: any) => v.name);
  t.deepEqual(secretVolumes, ["files"]);
  t.false(etcd.containers[0].volumeMounts.some((m: any) => secretVolumes.includes(m.name)));
  t.true(etcd.initContainers[0].volumeMounts.some((m: any) => m.name === "files"));
});

/** haproxy -c on a config; its exit status and output. */
function haproxyCheck(config: string) {
  const dir = mkdtempSync(join(tmpdir(), "dpc-haproxy-"));
  try {
    // The CA file the checks verify Patroni with, where the pod has it (from the group's Secret).
    const ca = join(dir, "ca.crt");
    writeFileSync(ca, secretData("dpc-haproxy")["dpc-haproxy__ca.crt"]);
    config = config.replaceAll("/etc/dpc/tls/ca.crt", ca);
    writeFileSync(join(dir, "haproxy.cfg"), config);
    return spawnSync("haproxy", ["-c", "-f", join(dir, "haproxy.cfg")], { encoding: "utf8" });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// HAProxy must start while a coordinator pod has no address (no *.svc.cluster.local name resolves
// here, as at a cluster's first start) and follow pods through DNS afterwards. The rendering is
// components/render/haproxy.ts: a `resolvers` section with parse-resolv-conf, `init-addr libc,none`.
test("haproxy -c accepts the Kubernetes HAProxy config where no pod name resolves, and every server re-resolves through DNS", (t) => {
  const config = secretData("dpc-haproxy")["dpc-haproxy__haproxy.cfg"];
  const result = haproxyCheck(config);
  t.is(result.status, 0, result.stderr);
  const servers = config.split("\n").filter((line) => line.trim().startsWith("server "));
  t.is(servers.length, 6);
  t.true(/^\s*resolvers \S+/m.test(config) && /parse-resolv-conf/.test(config), "a resolvers section reading the pod's resolv.conf");
  t.true(/default-server .*resolvers \S+/.test(config) || servers.every((s) => / resolvers /.test(s)), "every server re-resolves");
});

test("haproxy -c: the Kubernetes config is otherwise valid (its servers' names are the only thing it cannot resolve here)", (t) => {
  const config = secretData("dpc-haproxy")["dpc-haproxy__haproxy.cfg"];
  // The same config with the servers pointed at a literal address: what is left must pass.
  const result = haproxyCheck(config.replace(/ dpc-coordinator-\d\.dpc-coordinator\.dpc\.svc\.cluster\.local:/g, " 192.0.2.1:"));
  t.is(result.status, 0, result.stderr);
  const unresolved = haproxyCheck(config);
  t.log(`with pod names: exit ${unresolved.status}; ${(unresolved.stderr.match(/could not resolve address/g) ?? []).length} unresolved servers`);
});

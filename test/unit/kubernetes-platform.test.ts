// The program under mocks with `platform: kubernetes`: what `pulumi up` would register against a
// cluster (no cluster and no Pulumi CLI here), and MEMBER_WRAPPER run for real with /bin/sh on the
// Secret data the program declares.
import test from "ava";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { parse as parseYaml } from "yaml";
import {
  byType,
  devStackConfig,
  generatedPasswords,
  isSecretValue,
  key,
  passwordLeaks,
  registrations,
  reveal,
  settled,
  valueOf,
  type Registration,
} from "./_pulumi-harness.ts";
import { ConfigError, parseClusterConfig } from "../../components/spec.ts";
import {
  MEMBER_VAR,
  MEMBER_WRAPPER,
  STAGING_DIR,
  expandLikeKubelet,
  isStatefulSet,
  memberSecretData,
  memberService,
  sharedCommand,
} from "../../components/platform/kubernetes.ts";

const IMAGE = "registry.example.com/dpc-postgres:pg17";
const POD_CIDR = "10.244.0.0/16";
const APP_PASSWORD = "app-password-from-secret-config";
const DOMAIN = "dpc.svc.cluster.local";

const STATEFULSET = "kubernetes:apps/v1:StatefulSet";
const DEPLOYMENT = "kubernetes:apps/v1:Deployment";
const SERVICE = "kubernetes:core/v1:Service";
const SECRET = "kubernetes:core/v1:Secret";

let stack: any;
test.before(async () => {
  pulumi.runtime.setAllConfig(
    {
      ...devStackConfig(),
      [key("platform")]: "kubernetes",
      [key("databaseImage")]: IMAGE,
      [key("kubernetesPodCidr")]: POD_CIDR,
      [key("appPassword")]: APP_PASSWORD,
    },
    [key("appPassword")],
  );
  stack = await import("../../index.ts");
  await valueOf(stack.appConnectionString);
  await settled();
});

// Registered k8s objects by their Kubernetes name.
const k8sName = (r: Registration) => (r.inputs.metadata as { name: string }).name;
const named = (type: string, name: string) => byType(type).find((r) => k8sName(r) === name)!;
const spec = (r: Registration) => r.inputs.spec as any;
const container = (r: Registration) => spec(r).template.spec.containers[0];
/** The group Secret's data, revealed. */
const secretData = (group: string) => reveal(named(SECRET, `${group}-files`).inputs.stringData) as Record<string, string>;

const DATABASE_GROUPS = ["dpc-coordinator", ...[1, 2, 3, 4, 5, 6].map((g) => `dpc-worker${g}`)];
const membersOf = (set: Registration) => Array.from({ length: spec(set).replicas }, (_, i) => `${k8sName(set)}-${i}`);

test("a namespace, one StatefulSet per etcd and Patroni group, one Deployment per other process", (t) => {
  const namespaces = byType("kubernetes:core/v1:Namespace");
  t.deepEqual(namespaces.map(k8sName), ["dpc"]);
  const sets = Object.fromEntries(byType(STATEFULSET).map((r) => [k8sName(r), spec(r).replicas]));
  t.deepEqual(sets, {
    "dpc-etcd": 3,
    "dpc-coordinator": 3,
    ...Object.fromEntries([1, 2, 3, 4, 5, 6].map((g) => [`dpc-worker${g}`, 2])),
  });
  const exporters = DATABASE_GROUPS.flatMap((g) => membersOf(named(STATEFULSET, g))).map((n) => `${n}-exporter`);
  t.deepEqual(
    byType(DEPLOYMENT).map(k8sName).sort(),
    ["dpc-haproxy", "dpc-pgbouncer", "dpc-prometheus", "dpc-grafana", "dpc-pgbouncer-exporter", ...exporters].sort(),
  );
  for (const r of [...byType(STATEFULSET), ...byType(DEPLOYMENT), ...byType(SERVICE), ...byType(SECRET)]) {
    t.is((r.inputs.metadata as any).namespace, "dpc", r.name);
  }
});

test("headless Services with explicit names, published before ready; pods named after the members", (t) => {
  for (const set of byType(STATEFULSET)) {
    const name = k8sName(set);
    t.is(spec(set).serviceName, name);
    const headless = named(SERVICE, name);
    t.is(spec(headless).clusterIP, "None");
    t.true(spec(headless).publishNotReadyAddresses);
    t.deepEqual(spec(headless).selector, spec(set).selector.matchLabels);
    t.is(spec(set).podManagementPolicy, "Parallel");
    t.true(set.deleteBeforeReplace);
  }
  for (const deployment of byType(DEPLOYMENT)) {
    const name = k8sName(deployment);
    const pod = spec(deployment).template.spec;
    t.deepEqual([pod.hostname, pod.subdomain], [name, name]);
    t.is(spec(named(SERVICE, name)).clusterIP, "None");
    t.is(spec(deployment).strategy.type, "Recreate");
    t.is(memberService(name), name);
  }
});

test("one Secret per Patroni group: each member's own patroni.yml (its name, citus.group, pod DNS addresses), secret", (t) => {
  DATABASE_GROUPS.forEach((group, citusGroup) => {
    const secret = named(SECRET, `${group}-files`);
    t.true(isSecretValue(secret.inputs.stringData), group);
    t.true(secret.additionalSecretOutputs.includes("stringData"));
    const data = secretData(group);
    const set = named(STATEFULSET, group);
    // The pods' names (<statefulset>-<ordinal>) are exactly the members the renderer named.
    const members = membersOf(set);
    t.deepEqual(Object.keys(data).filter((k) => k.endsWith(".command")).map((k) => k.replace(/\.command$/, "")), members);
    for (const member of members) {
      const yml = parseYaml(data[`${member}__patroni.yml`]);
      t.is(yml.name, member);
      t.is(yml.scope, "dpc");
      t.is(yml.citus.group, citusGroup);
      t.is(yml.postgresql.connect_address, `${member}.${group}.${DOMAIN}:5432`);
      t.is(yml.restapi.connect_address, `${member}.${group}.${DOMAIN}:8008`);
      t.true(yml.etcd3.hosts.includes(`dpc-etcd-0.dpc-etcd.${DOMAIN}:2379`), JSON.stringify(yml.etcd3));
      const hba: string[] = yml.postgresql.pg_hba;
      t.true(hba.includes(`host all all ${POD_CIDR} scram-sha-256`), hba.join("\n"));
      t.false(hba.some((line) => line.includes("172.28.0.0/16")));
      t.is(data[`${member}.command`], "/usr/local/bin/dpc-entrypoint\n");
      t.deepEqual(data[`${member}.files`].trim().split("\n").sort(), [
        `0600 ${member}__app-password /etc/dpc/app-password`,
        `0600 ${member}__patroni.yml /etc/dpc/patroni.yml`,
        `0755 ${member}__post-bootstrap.sh /etc/dpc/post-bootstrap.sh`,
      ]);
      t.is(data[`${member}__app-password`], APP_PASSWORD);
    }
    // The pod template carries a hash of the data (a changed file rolls the pods), secret as well.
    t.true(isSecretValue(spec(set).template.metadata.annotations["dpc/files-sha256"]));
  });
});

test("database pods: the pre-built image, the wrapper, requests = limits, a claim per member, probes", (t) => {
  for (const group of DATABASE_GROUPS) {
    const set = named(STATEFULSET, group);
    const main = container(set);
    t.is(main.image, IMAGE);
    t.deepEqual(main.command.slice(0, 2), ["/bin/sh", "-c"]);
    // The kubelet expands $(VAR) and $$ in a command: the script must pass through unchanged.
    t.is(expandLikeKubelet(main.command[2], {}), MEMBER_WRAPPER);
    t.is(main.command[2], MEMBER_WRAPPER);
    t.deepEqual(main.command.slice(3), ["dpc-member", STAGING_DIR]);
    t.deepEqual(main.resources, { requests: { cpu: "1", memory: "2048Mi" }, limits: { cpu: "1", memory: "2048Mi" } });
    t.deepEqual(spec(set).volumeClaimTemplates, [
      { metadata: { name: "data" }, spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "10Gi" } } } },
    ]);
    t.true(main.volumeMounts.some((m: any) => m.name === "data" && m.mountPath === "/var/lib/postgresql/patroni"));
    t.true(main.volumeMounts.some((m: any) => m.name === "files" && m.mountPath === STAGING_DIR && m.readOnly));
    const health = ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8008/health"];
    t.deepEqual(main.readinessProbe.exec.command, health);
    t.deepEqual(main.livenessProbe.exec.command, health);
    t.true(main.livenessProbe.failureThreshold >= 10);
    // startSeconds 120: 24 periods of 5 s, then 3 more tries.
    t.is(main.startupProbe.failureThreshold, 27);
    t.is(spec(named("kubernetes:policy/v1:PodDisruptionBudget", group)).maxUnavailable, 1);
  }
});

test("etcd: no shell in its image, so one command with $(DPC_MEMBER) = the pod name, no Secret", (t) => {
  const set = named(STATEFULSET, "dpc-etcd");
  const main = container(set);
  t.deepEqual(main.env, [{ name: MEMBER_VAR, valueFrom: { fieldRef: { fieldPath: "metadata.name" } } }]);
  t.is(byType(SECRET).filter((r) => k8sName(r) === "dpc-etcd-files").length, 0);
  t.truthy(spec(set).volumeClaimTemplates[0]);
  for (const pod of membersOf(set)) {
    const argv = (main.command as string[]).map((arg) => expandLikeKubelet(arg, { [MEMBER_VAR]: pod }));
    t.is(argv[0], "/usr/local/bin/etcd");
    t.true(argv.includes(`--name=${pod}`));
    t.true(argv.includes(`--initial-advertise-peer-urls=http://${pod}.dpc-etcd.${DOMAIN}:2380`));
    t.true(argv.includes(`--initial-cluster=${[0, 1, 2].map((i) => `dpc-etcd-${i}=http://dpc-etcd-${i}.dpc-etcd.${DOMAIN}:2380`).join(",")}`));
  }
});

test("published ports: <member>-public Services of type LoadBalancer; endpoints are in-cluster DNS names", async (t) => {
  const published = byType(SERVICE)
    .filter((r) => spec(r).type)
    .map((r) => [k8sName(r), spec(r).type, spec(r).ports.map((p: any) => [p.port, p.targetPort])]);
  t.deepEqual(published.sort(), [
    ["dpc-grafana-public", "LoadBalancer", [[3000, 3000]]],
    ["dpc-haproxy-public", "LoadBalancer", [[5000, 5000], [5001, 5001]]],
    ["dpc-pgbouncer-public", "LoadBalancer", [[6432, 6432]]],
    ["dpc-prometheus-public", "LoadBalancer", [[9090, 9090]]],
  ]);
  t.is(await valueOf(stack.readWriteEndpoint), "dpc-haproxy-public.dpc.svc.cluster.local:5000");
  t.is(await valueOf(stack.pgbouncerEndpoint), "dpc-pgbouncer-public.dpc.svc.cluster.local:6432");
  // PgBouncer reaches HAProxy by its pod's DNS name; Prometheus keeps its TSDB on a claim of its own.
  const ini = secretData("dpc-pgbouncer")["dpc-pgbouncer__pgbouncer.ini"];
  t.regex(ini, new RegExp(`host=dpc-haproxy\\.dpc-haproxy\\.${DOMAIN.replaceAll(".", "\\.")}`));
  t.is(spec(named("kubernetes:core/v1:PersistentVolumeClaim", "dpc-prometheus-data")).resources.requests.storage, "10Gi");
});

test("runAs: pod securityContext and fsGroup; the Secret readable through that group only", (t) => {
  const pgbouncer = spec(named(DEPLOYMENT, "dpc-pgbouncer")).template.spec;
  t.deepEqual(pgbouncer.securityContext, { runAsUser: 70, runAsGroup: 70, fsGroup: 70 });
  t.is(pgbouncer.volumes.find((v: any) => v.name === "files").secret.defaultMode, 0o440);
  t.is(secretData("dpc-pgbouncer")["dpc-pgbouncer.files"].split("\n").find((l) => l.includes("userlist"))!.split(" ")[0], "0600");
});

test("dependencies: the Patroni StatefulSets wait for etcd's, HAProxy for the coordinator's", (t) => {
  const etcd = named(STATEFULSET, "dpc-etcd").urn;
  for (const group of DATABASE_GROUPS) t.true(named(STATEFULSET, group).dependencies.includes(etcd), group);
  t.true(named(DEPLOYMENT, "dpc-haproxy").dependencies.includes(named(STATEFULSET, "dpc-coordinator").urn));
});

test("no password is plain in any registration input", async (t) => {
  t.is(generatedPasswords.length, 5); // four cluster passwords and Grafana's; the app password is configured
  t.deepEqual(passwordLeaks([...generatedPasswords, APP_PASSWORD]), []);
  t.true(await pulumi.isSecret(stack.appConnectionString));
  t.true(registrations.length > 0);
});

// ---------------------------------------------------------------------------------------------
// The wrapper, run for real.

/**
 * Writes `data` as the Secret volume would, then runs the pod's command as the kubelet would ($(VAR)
 * and $$ expanded), with a temp staging dir for the mount and DPC_ROOT for the target paths.
 */
function runWrapper(command: string[], data: Record<string, string>, hostname: string) {
  const dir = mkdtempSync(join(tmpdir(), "dpc-wrapper-"));
  const staging = join(dir, "staging");
  const root = join(dir, "root");
  mkdirSync(staging);
  for (const [k, v] of Object.entries(data)) writeFileSync(join(staging, k), v);
  const argv = command.map((arg) => (arg === STAGING_DIR ? staging : expandLikeKubelet(arg, {})));
  const result = spawnSync(argv[0], argv.slice(1), {
    env: { PATH: process.env.PATH, HOSTNAME: hostname, DPC_ROOT: root },
    encoding: "utf8",
  });
  return { root, result, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
const mode = (path: string) => (statSync(path).mode & 0o777).toString(8);

test("the wrapper installs the pod's own member files with their modes, then execs its command", (t) => {
  const data = secretData("dpc-coordinator");
  // Run `echo` in front of the member's own command line, to see which one it execs.
  const member = "dpc-coordinator-1";
  const probe = { ...data, [`${member}.command`]: `echo\n${data[`${member}.command`]}` };
  const run = runWrapper(container(named(STATEFULSET, "dpc-coordinator")).command, probe, member);
  try {
    t.is(run.result.status, 0, run.result.stderr);
    t.is(run.result.stdout, "/usr/local/bin/dpc-entrypoint\n");
    const installed = (name: string) => join(run.root, "etc/dpc", name);
    t.is(readFileSync(installed("patroni.yml"), "utf8"), data[`${member}__patroni.yml`]);
    t.is(parseYaml(readFileSync(installed("patroni.yml"), "utf8")).name, member);
    t.is(mode(installed("patroni.yml")), "600");
    t.is(mode(installed("app-password")), "600");
    t.is(mode(installed("post-bootstrap.sh")), "755");
  } finally {
    run.cleanup();
  }
});

test("the wrapper: env and argv kept exactly (spaces, quotes, $), files of the right member only; unknown member fails", (t) => {
  const members = ["app-0", "app-1"].map((name) => ({
    name,
    command: ["/bin/sh", "-c", `printf '[%s]' "$0" "$@"; echo " $GREETING"`, `${name} with 'quotes'`, "$HOME and $(date)", ""],
    env: { GREETING: `hello from ${name}` },
    files: [],
  }));
  const files = members.map((m) => [
    { path: "/etc/dpc/a/secret.conf", content: `secret of ${m.name}`, secret: true },
    { path: "/etc/dpc/plain.txt", content: `plain of ${m.name}`, secret: false },
    { path: "/etc/dpc/run.sh", content: "#!/bin/sh\n", secret: false, executable: true },
  ]);
  const data = memberSecretData(members, files);
  const command = ["/bin/sh", "-c", container(named(STATEFULSET, "dpc-coordinator")).command[2], "dpc-member", STAGING_DIR];
  const run = runWrapper(command, data, "app-1");
  try {
    t.is(run.result.status, 0, run.result.stderr);
    t.is(run.result.stdout, `[app-1 with 'quotes'][$HOME and $(date)][] hello from app-1\n`);
    t.is(readFileSync(join(run.root, "etc/dpc/a/secret.conf"), "utf8"), "secret of app-1");
    t.is(mode(join(run.root, "etc/dpc/a/secret.conf")), "600");
    t.is(mode(join(run.root, "etc/dpc/a")), "700");
    t.is(mode(join(run.root, "etc/dpc/plain.txt")), "644");
    t.is(mode(join(run.root, "etc/dpc/run.sh")), "755");
  } finally {
    run.cleanup();
  }
  const unknown = runWrapper(command, data, "app-7");
  try {
    t.is(unknown.result.status, 1);
    t.regex(unknown.result.stderr, /no member named app-7/);
  } finally {
    unknown.cleanup();
  }
});

// ---------------------------------------------------------------------------------------------
// Pure pieces.

test("memberSecretData refuses what the wrapper could not carry", (t) => {
  const member = { name: "m-0", command: ["x"], files: [] };
  const file = (path: string) => [[{ path, content: "", secret: false }]];
  t.throws(() => memberSecretData([member], file("/etc/other/x")), { message: /under \/etc\/dpc\// });
  t.throws(() => memberSecretData([member], file("/etc/dpc/with space")), { message: /letters, digits/ });
  t.throws(() => memberSecretData([member], [[{ path: "/etc/dpc/a/x", content: "", secret: false }, { path: "/etc/dpc/b/x", content: "", secret: false }]]), {
    message: /two files named x/,
  });
  t.throws(() => memberSecretData([{ ...member, command: ["a\nb"] }], [[]]), { message: /newline/ });
});

test("sharedCommand templates only the arguments that differ, and only when that reproduces every member", (t) => {
  const m = (name: string, command: string[]) => ({ name, command, files: [] });
  t.deepEqual(sharedCommand([m("e-0", ["run", "--name=e-0", "--all=e-0,e-1", "$x"]), m("e-1", ["run", "--name=e-1", "--all=e-0,e-1", "$x"])]), [
    "run",
    `--name=$(${MEMBER_VAR})`,
    "--all=e-0,e-1",
    "$$x",
  ]);
  t.is(sharedCommand([m("e-0", ["--name=e-0"]), m("e-1", ["--name=other"])]), undefined);
  t.is(sharedCommand([m("e-0", ["a"]), m("e-1", ["a", "b"])]), undefined);
});

test("StatefulSet or a pod per member, from the member names alone", (t) => {
  const group = (name: string, members: string[]) => ({ name, members: members.map((n) => ({ name: n, command: [], files: [] })) });
  t.true(isStatefulSet(group("dpc-coordinator", ["dpc-coordinator-0", "dpc-coordinator-1"])));
  t.false(isStatefulSet(group("dpc-haproxy", ["dpc-haproxy"])));
  t.false(isStatefulSet(group("dpc-postgres-exporter", ["dpc-coordinator-0-exporter"])));
  // A member whose name ends in -<number> outside its group's ordinals would get an unresolvable name.
  t.throws(() => isStatefulSet(group("g", ["other-1"])), { message: /<group>-<ordinal>/ });
  t.throws(() => isStatefulSet(group("g", ["g-1", "g-0"])), { message: /<group>-<ordinal>/ });
});

test("validation: kubernetes needs databaseImage; the new keys are checked", (t) => {
  const error = t.throws(() => parseClusterConfig({ platform: "kubernetes" }), { instanceOf: ConfigError });
  t.regex(error!.message, /databaseImage: got "" with platform "kubernetes"/);
  t.notThrows(() => parseClusterConfig({ platform: "docker" }));
  const bad = t.throws(
    () =>
      parseClusterConfig({
        platform: "kubernetes",
        databaseImage: IMAGE,
        kubernetesVolumeSize: "ten",
        kubernetesPodCidr: "10.0.0.0/33",
        kubernetesServiceType: "ClusterIP",
        kubernetesStorageClass: "Fast SSD",
      }),
    { instanceOf: ConfigError },
  );
  for (const k of ["kubernetesVolumeSize", "kubernetesPodCidr", "kubernetesServiceType", "kubernetesStorageClass"]) t.regex(bad!.message, new RegExp(`${k}:`));
  const ok = parseClusterConfig({ platform: "kubernetes", databaseImage: IMAGE, kubernetesStorageClass: "fast-ssd", kubernetesServiceType: "NodePort" });
  t.deepEqual([ok.kubernetesVolumeSize, ok.kubernetesPodCidr, ok.kubernetesStorageClass], ["10Gi", "10.0.0.0/8", "fast-ssd"]);
});

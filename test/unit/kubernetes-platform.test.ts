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
  generatedPasswords,
  isSecretValue,
  passwordLeaks,
  registrations,
  valueOf,
} from "./_pulumi-harness.ts";
import {
  APP_PASSWORD,
  DATABASE_GROUPS,
  DOMAIN,
  IMAGE,
  STEPS_IMAGE,
  POD_CIDR,
  TYPES,
  container,
  k8sName,
  loadKubernetesStack,
  membersOf,
  named,
  secretData,
  spec,
} from "./_kubernetes-stack.ts";
import { ConfigError, parseClusterConfig } from "../../components/spec.ts";
import { X509Certificate } from "node:crypto";
import {
  FILES_INSTALLER,
  MEMBER_VAR,
  MEMBER_WRAPPER,
  STAGING_DIR,
  expandLikeKubelet,
  isStatefulSet,
  memberSecretData,
  memberService,
  sharedCommand,
} from "../../components/platform/kubernetes.ts";

const STATEFULSET = TYPES.statefulSet;
const DEPLOYMENT = TYPES.deployment;
const SERVICE = TYPES.service;
const SECRET = TYPES.secret;

let stack: any;
test.before(async () => {
  stack = await loadKubernetesStack();
});

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

test("headless Services for the StatefulSets (published before ready); a ClusterIP Service per other member", (t) => {
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
    // The wrapper picks the member's files by $HOSTNAME; the address is the Service's, not the pod's.
    t.deepEqual([pod.hostname, pod.subdomain], [name, undefined]);
    const service = spec(named(SERVICE, name));
    t.is(service.type, "ClusterIP");
    t.is(service.clusterIP, undefined);
    t.deepEqual(service.selector, spec(deployment).selector.matchLabels);
    // Only Prometheus holds a ReadWriteOnce volume: the old pod must go first.
    t.is(spec(deployment).strategy.type, name === "dpc-prometheus" ? "Recreate" : "RollingUpdate", name);
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
      // TCP over TLS only (hostssl); no plain `host` line.
      t.true(hba.includes(`hostssl all all ${POD_CIDR} scram-sha-256`), hba.join("\n"));
      t.false(hba.some((line) => line.startsWith("host ")), hba.join("\n"));
      t.false(hba.some((line) => line.includes("172.28.0.0/16")));
      t.is(data[`${member}.command`], "/usr/local/bin/dpc-entrypoint\n");
      t.deepEqual(data[`${member}.files`].trim().split("\n").sort(), [
        `0600 ${member}__app-password /etc/dpc/app-password`,
        `0600 ${member}__patroni.yml /etc/dpc/patroni.yml`,
        ...(citusGroup > 0 ? [`0755 ${member}__citus-after-promote.py /etc/dpc/citus-after-promote.py`] : []),
        `0755 ${member}__post-bootstrap.sh /etc/dpc/post-bootstrap.sh`,
        `0755 ${member}__timeline-guard.py /etc/dpc/timeline-guard.py`,
        `0644 ${member}__ca.crt /etc/dpc/tls/ca.crt`,
        `0644 ${member}__server.crt /etc/dpc/tls/server.crt`,
        `0600 ${member}__server.key /etc/dpc/tls/server.key`,
      ].sort());
      // Its own certificate, naming its pod DNS name (the address every peer dials).
      const cert = new X509Certificate(data[`${member}__server.crt`]);
      t.true(cert.subjectAltName!.split(", ").includes(`DNS:${member}.${group}.${DOMAIN}`), cert.subjectAltName);
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
    // Patroni's REST API speaks HTTPS only; the kubelet does not verify the certificate.
    t.deepEqual(main.readinessProbe.httpGet, { path: "/readiness", port: 8008, scheme: "HTTPS" });
    t.deepEqual(main.livenessProbe.httpGet, { path: "/liveness", port: 8008, scheme: "HTTPS" });
    t.deepEqual(main.startupProbe.httpGet, { path: "/liveness", port: 8008, scheme: "HTTPS" });
  }
});

test("etcd: no shell in its image, so one command with $(DPC_MEMBER) = the pod name; its TLS files installed by an init container", (t) => {
  const set = named(STATEFULSET, "dpc-etcd");
  const main = container(set);
  t.deepEqual(main.env, [{ name: MEMBER_VAR, valueFrom: { fieldRef: { fieldPath: "metadata.name" } } }]);
  // The Secret with each member's certificate and key; the database image's shell installs the pod's own.
  const data = secretData("dpc-etcd");
  const [init] = spec(set).template.spec.initContainers;
  t.deepEqual(init.command, ["/bin/sh", "-c", FILES_INSTALLER, "dpc-files", STAGING_DIR]);
  t.is(init.image, IMAGE);
  t.true(main.volumeMounts.some((m: any) => m.name === "config" && m.mountPath === "/etc/dpc" && m.readOnly));
  t.false(main.volumeMounts.some((m: any) => m.name === "files"), "the main container never sees other members' keys");
  // Probes on the plain metrics listener (the client port demands a client certificate).
  t.deepEqual(main.readinessProbe.httpGet, { path: "/health", port: 2381, scheme: "HTTP" });
  for (const member of membersOf(set)) {
    t.deepEqual(data[`${member}.files`].trim().split("\n").sort(), [
      `0600 ${member}__server.key /etc/dpc/tls/server.key`,
      `0644 ${member}__ca.crt /etc/dpc/tls/ca.crt`,
      `0644 ${member}__server.crt /etc/dpc/tls/server.crt`,
    ]);
    const cert = new X509Certificate(data[`${member}__server.crt`]);
    t.true(cert.subjectAltName!.split(", ").includes(`DNS:${member}.dpc-etcd.${DOMAIN}`), cert.subjectAltName);
  }
  t.truthy(spec(set).volumeClaimTemplates[0]);
  for (const pod of membersOf(set)) {
    const argv = (main.command as string[]).map((arg) => expandLikeKubelet(arg, { [MEMBER_VAR]: pod }));
    t.is(argv[0], "/usr/local/bin/etcd");
    t.true(argv.includes(`--name=${pod}`));
    t.true(argv.includes(`--initial-advertise-peer-urls=https://${pod}.dpc-etcd.${DOMAIN}:2380`));
    t.true(argv.includes(`--initial-cluster=${[0, 1, 2].map((i) => `dpc-etcd-${i}=https://dpc-etcd-${i}.dpc-etcd.${DOMAIN}:2380`).join(",")}`));
    t.true(argv.includes("--client-cert-auth") && argv.includes("--peer-client-cert-auth"));
    t.true(argv.includes("--listen-metrics-urls=http://0.0.0.0:2381"));
  }
});

test("nothing published by default: every Service ClusterIP or headless; endpoints are in-cluster Service names", async (t) => {
  t.deepEqual(byType(SERVICE).filter((r) => spec(r).type !== undefined && spec(r).type !== "ClusterIP").map(k8sName), []);
  t.deepEqual(byType(SERVICE).filter((r) => k8sName(r).endsWith("-public")).map(k8sName), []);
  t.is(await valueOf(stack.readWriteEndpoint), "dpc-haproxy.dpc.svc.cluster.local:5000");
  t.is(await valueOf(stack.readOnlyEndpoint), "dpc-haproxy.dpc.svc.cluster.local:5001");
  t.is(await valueOf(stack.pgbouncerEndpoint), "dpc-pgbouncer.dpc.svc.cluster.local:6432");
  t.is(await valueOf(stack.prometheusEndpoint), "dpc-prometheus.dpc.svc.cluster.local:9090");
  // PgBouncer reaches HAProxy by its Service (one stable address for all its pods); Prometheus keeps
  // its TSDB on a claim of its own.
  const ini = secretData("dpc-pgbouncer")["dpc-pgbouncer__pgbouncer.ini"];
  t.regex(ini, new RegExp(`host=dpc-haproxy\\.${DOMAIN.replaceAll(".", "\\.")} `));
  t.is(spec(named("kubernetes:core/v1:PersistentVolumeClaim", "dpc-prometheus-data")).resources.requests.storage, "10Gi");
});

test("runAs: pod securityContext and fsGroup; the Secret readable through that group only", (t) => {
  const pgbouncer = spec(named(DEPLOYMENT, "dpc-pgbouncer")).template.spec;
  t.like(pgbouncer.securityContext, { runAsNonRoot: true, runAsUser: 70, runAsGroup: 70, fsGroup: 70 });
  t.is(pgbouncer.volumes.find((v: any) => v.name === "files").secret.defaultMode, 0o440);
  t.is(secretData("dpc-pgbouncer")["dpc-pgbouncer.files"].split("\n").find((l) => l.includes("userlist"))!.split(" ")[0], "0600");
});

test("dependencies: the Patroni StatefulSets wait for etcd's, HAProxy for the coordinator's", (t) => {
  const etcd = named(STATEFULSET, "dpc-etcd").urn;
  for (const group of DATABASE_GROUPS) t.true(named(STATEFULSET, group).dependencies.includes(etcd), group);
  t.true(named(DEPLOYMENT, "dpc-haproxy").dependencies.includes(named(STATEFULSET, "dpc-coordinator").urn));
});

test("no password is plain in any registration input", async (t) => {
  t.is(generatedPasswords.length, 9); // + PgBouncer's lookup and admin credentials; + the exporters' role's; + the deploy steps' trigger key; four cluster passwords and Grafana's; the app password is configured
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

test("validation: kubernetes needs databaseImage and deployStepsImage; the new keys are checked", (t) => {
  const error = t.throws(() => parseClusterConfig({ platform: "kubernetes" }), { instanceOf: ConfigError });
  t.regex(error!.message, /databaseImage: got "" with platform "kubernetes"/);
  t.regex(error!.message, /deployStepsImage: got "" with platform "kubernetes"; allowed: a pre-built image reference/);
  t.regex(t.throws(() => parseClusterConfig({ platform: "kubernetes", databaseImage: IMAGE, deployStepsImage: "a b" }))!.message, /deployStepsImage: got "a b"/);
  t.notThrows(() => parseClusterConfig({ platform: "docker" }));
  const bad = t.throws(
    () =>
      parseClusterConfig({
        platform: "kubernetes",
        databaseImage: IMAGE, deployStepsImage: STEPS_IMAGE,
        kubernetesVolumeSize: "ten",
        kubernetesPodCidr: "10.0.0.0/33",
        kubernetesServiceType: "ExternalName",
        kubernetesStorageClass: "Fast SSD",
      }),
    { instanceOf: ConfigError },
  );
  for (const k of ["kubernetesVolumeSize", "kubernetesPodCidr", "kubernetesServiceType", "kubernetesStorageClass"]) t.regex(bad!.message, new RegExp(`${k}:`));
  const ok = parseClusterConfig({
    platform: "kubernetes",
    databaseImage: IMAGE, deployStepsImage: STEPS_IMAGE,
    kubernetesStorageClass: "fast-ssd",
    kubernetesServiceType: "NodePort",
    kubernetesSourceRanges: "203.0.113.0/24, 198.51.100.7/32",
  });
  t.deepEqual([ok.kubernetesVolumeSize, ok.kubernetesPodCidr, ok.kubernetesStorageClass], ["10Gi", "10.0.0.0/8", "fast-ssd"]);
  const defaults = parseClusterConfig({ platform: "kubernetes", databaseImage: IMAGE, deployStepsImage: STEPS_IMAGE });
  t.deepEqual(
    [defaults.kubernetesServiceType, defaults.kubernetesSourceRanges, defaults.kubernetesRouterReplicas, defaults.kubernetesPostgresUid, defaults.kubernetesPostgresGid, defaults.kubernetesTerminationGraceSeconds],
    ["ClusterIP", "", 2, 999, 999, 300],
  );
});

test("validation of the keys for publishing, replicas, users and grace: each names the key, the value and what is allowed", (t) => {
  const problems = (raw: Record<string, unknown>) => {
    try {
      parseClusterConfig({ platform: "kubernetes", databaseImage: IMAGE, deployStepsImage: STEPS_IMAGE, ...raw });
      return [];
    } catch (error) {
      return (error as ConfigError).problems;
    }
  };
  t.deepEqual(problems({ kubernetesServiceType: "LoadBalancer" }), [
    `kubernetesSourceRanges: got "" with kubernetesServiceType "LoadBalancer"; allowed: the CIDRs that may reach the published Services (e.g. "203.0.113.0/24"): nothing is published to everyone`,
  ]);
  t.deepEqual(problems({ kubernetesServiceType: "NodePort", kubernetesSourceRanges: "10.0.0.0/8,300.1.1.1/32" }), [
    `kubernetesSourceRanges: got "300.1.1.1/32"; allowed: IPv4 CIDRs with octets up to 255 and a prefix from /0 to /32, separated by commas`,
  ]);
  t.regex(problems({ kubernetesSourceRanges: "everyone" })[0], /^kubernetesSourceRanges: got "everyone"; allowed: a string matching/);
  t.deepEqual(problems({ kubernetesRouterReplicas: 0 }), ["kubernetesRouterReplicas: got 0; allowed: an integer from 1 to 10"]);
  t.deepEqual(problems({ kubernetesPostgresUid: 0 }), ["kubernetesPostgresUid: got 0; allowed: an integer from 1 to 2147483647"]);
  t.deepEqual(problems({ kubernetesTerminationGraceSeconds: 10 }), ["kubernetesTerminationGraceSeconds: got 10; allowed: an integer from 30 to 3600"]);
  t.deepEqual(problems({ kubernetesServiceType: "LoadBalancer", kubernetesSourceRanges: "0.0.0.0/0" }), []);
});

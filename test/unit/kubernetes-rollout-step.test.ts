// The rollout deploy step on Kubernetes, read from the objects the program registers under mocks: a
// Job of the deploy-steps image that runs after every Patroni group and the router and before the
// schema, its own ServiceAccount and Roles (only the Patroni StatefulSets and their pods), its pods
// alone admitted to Patroni's REST API, its report in the stack outputs; and its trigger, the same
// for the same configuration (a second `up` runs nothing), new for a new pod template or new
// parameters (which change no pod template). Serial: the last test runs the program again.
import test from "ava";
import { MOCK_ROLLOUT_REPORT, generatedPasswords, registrations, reveal, settled, valueOf, plainStrings, type Registration } from "./_pulumi-harness.ts";
import { APP_PASSWORD, DATABASE_GROUPS, STEPS_IMAGE, TYPES, container, k8sName, loadKubernetesStack, manifests, membersOf, named, podSpec, resourceOptions, spec } from "./_kubernetes-stack.ts";
import { admitted, type Source } from "./_network-policy-eval.ts";
import { rolloutOrder, rolloutStepDeadlineSeconds, rolloutTrigger } from "../../components/rollout-run.ts";
import { rolloutRules, stepEgressPolicySpec } from "../../components/platform/kubernetes/deploy-step.ts";
import type { RolloutStepInputs } from "../../components/rollout/step.ts";

let stack: any;
let firstRun: Registration[] = [];
test.before(async () => {
  stack = await loadKubernetesStack({ postgresParameters: JSON.stringify({ work_mem: "16MB" }) });
  firstRun = [...registrations];
});

const job = (name: string) => named(TYPES.job, name);
const stepInput = (name: string) => JSON.parse((reveal(named(TYPES.secret, `${name}-input`).inputs.stringData) as Record<string, string>)["input.json"]);
const WORKERS = DATABASE_GROUPS.slice(1);

test.serial("the rollout is a Job of the deploy-steps image, `rollout` its only argument, its input (the groups, workers first) a mounted Secret", (t) => {
  const main = container(job("dpc-rollout"));
  t.is(main.image, STEPS_IMAGE);
  t.deepEqual(main.args, ["rollout"]);
  t.is(podSpec(job("dpc-rollout")).serviceAccountName, "dpc-rollout-step");
  t.is(spec(job("dpc-rollout")).template.metadata.labels["dpc/kind"], "rollout-step");
  const input = stepInput("dpc-rollout") as RolloutStepInputs;
  t.is(input.namespace, "dpc");
  t.deepEqual(input.groups.map((g) => [g.group, g.statefulSet]), [1, 2, 3, 4, 5, 6, 0].map((g) => [g, g === 0 ? "dpc-coordinator" : `dpc-worker${g}`]));
  t.deepEqual(input.groups[0].members, [
    { name: "dpc-worker1-0", restUrl: "https://dpc-worker1-0.dpc-worker1.dpc.svc.cluster.local:8008" },
    { name: "dpc-worker1-1", restUrl: "https://dpc-worker1-1.dpc-worker1.dpc.svc.cluster.local:8008" },
  ]);
  t.is(input.parameters.work_mem, "16MB", "postgresParameters over the sized defaults");
  t.is(input.parameters.shared_buffers, "512MB");
  t.regex(input.restAuth, /^patroni:.+/);
  t.regex(input.poolerAdminUrl, /^postgresql:\/\/pgbouncer_admin:[^@]+@dpc-pgbouncer\.dpc\.svc\.cluster\.local:6432\/pgbouncer$/);
  t.regex(input.readWriteUrl, /^postgresql:\/\/postgres:[^@]+@dpc-haproxy\.dpc\.svc\.cluster\.local:5000\/postgres$/);
  t.is(input.stepTimeoutSeconds, 300);
  // Patroni, PgBouncer and HAProxy (the coordinators) are verified against the cluster CA, by the Services' names.
  t.regex(input.ca ?? "", /^-----BEGIN CERTIFICATE-----/);
  // Two PgBouncer and two HAProxy pods: paused and checked one by one, found by these labels.
  t.deepEqual(input.routers, { pgbouncer: { "app.kubernetes.io/part-of": "dpc", "dpc/kind": "pgbouncer" }, haproxy: { "app.kubernetes.io/part-of": "dpc", "dpc/kind": "haproxy" } });
  for (const [kind, deployment] of [["pgbouncer", "dpc-pgbouncer"], ["haproxy", "dpc-haproxy"]] as const) {
    t.like(spec(named(TYPES.deployment, deployment)).template.metadata.labels, input.routers![kind]);
    t.is(spec(named(TYPES.deployment, deployment)).replicas, 2);
  }
  // The Secret is a Pulumi secret; no password anywhere in the Job.
  t.deepEqual(plainStrings(named(TYPES.secret, "dpc-rollout-input").inputs.stringData), []);
  const text = JSON.stringify(reveal(job("dpc-rollout").inputs));
  t.false([APP_PASSWORD, ...generatedPasswords].some((p) => text.includes(p)));
});

test.serial("order: after every Patroni group and HAProxy; the schema (and so the benchmark and PgBouncer) after the rollout", (t) => {
  const rollout = job("dpc-rollout");
  for (const [type, name] of [...DATABASE_GROUPS.map((g) => [TYPES.statefulSet, g]), [TYPES.deployment, "dpc-haproxy"]]) {
    t.true(rollout.dependencies.includes(named(type, name).urn), `rollout Job waits for ${name}`);
  }
  // PgBouncer (a new Deployment or template) waits for the schema's lookup role, so not the other way
  // round: the rollout pauses the PgBouncer pods of the previous deployment.
  t.false(rollout.dependencies.includes(named(TYPES.deployment, "dpc-pgbouncer").urn));
  t.true(named(TYPES.deployment, "dpc-pgbouncer").dependencies.includes(job("dpc-schema").urn));
  for (const [type, name] of [[TYPES.secret, "dpc-rollout-input"], [TYPES.configMap, "dpc-rollout-result"], [TYPES.roleBinding, "dpc-rollout-result-writer"], [TYPES.roleBinding, "dpc-rollout-pods"], [TYPES.networkPolicy, "dpc-rollout-step"]]) {
    t.true(rollout.dependencies.includes(named(type, name).urn), `rollout Job waits for its ${name}`);
  }
  t.true(job("dpc-schema").dependencies.includes(rollout.urn), "the schema Job waits for the rollout Job");
  t.false(rollout.dependencies.includes(job("dpc-schema").urn));
});

test.serial("time and retries: a deadline from the topology, Pulumi's wait beyond it, a new Job for a new trigger", (t) => {
  const s = spec(job("dpc-rollout"));
  const deadline = rolloutStepDeadlineSeconds([2, 2, 2, 2, 2, 2, 3]);
  t.is(deadline, 600 + (6 * 5 + 7) * 300);
  t.is(s.activeDeadlineSeconds, deadline);
  t.is(s.backoffLimit, 2);
  t.is(s.template.spec.restartPolicy, "Never");
  const options = resourceOptions.get(job("dpc-rollout").urn)!;
  t.deepEqual(options.replaceOnChanges, ["spec"]);
  t.deepEqual(options.customTimeouts, { create: `${deadline + 300}s`, update: `${deadline + 300}s` });
});

test.serial("its own ServiceAccount and Roles: its result ConfigMap; get the Patroni StatefulSets, list pods, delete the members' pods and no other", (t) => {
  t.is((named(TYPES.serviceAccount, "dpc-rollout-step").inputs as any).automountServiceAccountToken, false);
  const rules = (named(TYPES.role, "dpc-rollout-pods").inputs as any).rules;
  const members = rolloutOrder([0, 1, 2, 3, 4, 5, 6]).flatMap((g) => membersOf(named(TYPES.statefulSet, g === 0 ? "dpc-coordinator" : `dpc-worker${g}`)));
  t.deepEqual(rules, [
    { apiGroups: ["apps"], resources: ["statefulsets"], resourceNames: [...WORKERS, "dpc-coordinator"], verbs: ["get"] },
    { apiGroups: [""], resources: ["pods"], verbs: ["list"] },
    { apiGroups: [""], resources: ["pods"], resourceNames: members, verbs: ["delete"] },
  ]);
  t.is(members.length, 3 + 6 * 2);
  t.false(members.some((m) => m.startsWith("dpc-etcd")), "etcd's pods are not the rollout's to delete");
  t.deepEqual((named(TYPES.role, "dpc-rollout-result-writer").inputs as any).rules, [
    { apiGroups: [""], resources: ["configmaps"], resourceNames: ["dpc-rollout-result"], verbs: ["get", "patch"] },
  ]);
  for (const name of ["dpc-rollout-pods", "dpc-rollout-result-writer"]) {
    t.deepEqual((named(TYPES.roleBinding, name).inputs as any).subjects, [{ kind: "ServiceAccount", name: "dpc-rollout-step", namespace: "dpc" }], name);
  }
  // The schema's and the benchmark's account gets no pod rights: every binding of the pods Role names the rollout's account only.
  const podBindings = firstRun.filter((r) => r.type === TYPES.roleBinding).filter((b) => (b.inputs as any).roleRef.name === "dpc-rollout-pods");
  t.deepEqual(podBindings.map(k8sName), ["dpc-rollout-pods"]);
  t.deepEqual(rolloutRules([]).map((r) => r.verbs), [["get"], ["list"], ["delete"]]);
});

test.serial("network: the rollout's pods reach Patroni's REST API, PgBouncer and HAProxy's read-write port; no other step's pods reach Patroni", (t) => {
  const policies = manifests().filter((m) => m.kind === "NetworkPolicy");
  const labels = (type: string, name: string) => spec(named(type, name)).template.metadata.labels as Record<string, string>;
  const from = (name: string): Source => ({ namespace: "dpc", labels: labels(TYPES.job, name) });
  const to = (type: string, name: string, port: number) => ({ namespace: "dpc", labels: labels(type, name), port });
  const cases: [string, Source, ReturnType<typeof to>, boolean][] = [
    ["rollout Job -> coordinator Patroni REST", from("dpc-rollout"), to(TYPES.statefulSet, "dpc-coordinator", 8008), true],
    ["rollout Job -> worker Patroni REST", from("dpc-rollout"), to(TYPES.statefulSet, "dpc-worker6", 8008), true],
    ["rollout Job -> PgBouncer (PAUSE, RESUME)", from("dpc-rollout"), to(TYPES.deployment, "dpc-pgbouncer", 6432), true],
    ["rollout Job -> HAProxy read-write (routed alone)", from("dpc-rollout"), to(TYPES.deployment, "dpc-haproxy", 5000), true],
    ["rollout Job -> PostgreSQL", from("dpc-rollout"), to(TYPES.statefulSet, "dpc-coordinator", 5432), false],
    ["rollout Job -> etcd", from("dpc-rollout"), to(TYPES.statefulSet, "dpc-etcd", 2379), false],
    ["rollout Job -> HAProxy stats", from("dpc-rollout"), to(TYPES.deployment, "dpc-haproxy", 7000), false],
    ["schema Job -> Patroni REST", from("dpc-schema"), to(TYPES.statefulSet, "dpc-coordinator", 8008), false],
    ["benchmark Job -> Patroni REST", from("dpc-benchmark"), to(TYPES.statefulSet, "dpc-worker1", 8008), false],
  ];
  for (const [what, source, target, expected] of cases) t.is(admitted(policies, source, target), expected, what);
  // Its egress: the router, Patroni's REST port on the database pods, DNS, the API server.
  const egress = spec(named(TYPES.networkPolicy, "dpc-rollout-step"));
  t.deepEqual(egress, stepEgressPolicySpec("dpc", "rollout-step"));
  t.deepEqual(egress.podSelector.matchLabels, { "app.kubernetes.io/part-of": "dpc", "dpc/kind": "rollout-step" });
  t.deepEqual(
    egress.egress.map((rule: any) => ({ to: rule.to?.[0]?.podSelector?.matchLabels?.["dpc/kind"] ?? "any", ports: rule.ports.map((p: any) => `${p.protocol}/${p.port}`) })),
    [
      { to: "haproxy", ports: ["TCP/5000"] },
      { to: "pgbouncer", ports: ["TCP/6432"] },
      { to: "database", ports: ["TCP/8008"] },
      { to: "any", ports: ["UDP/53", "TCP/53"] },
      { to: "any", ports: ["TCP/443", "TCP/6443"] },
    ],
  );
});

test.serial("the stack output rolloutReport is the report the Job wrote to its ConfigMap", async (t) => {
  t.deepEqual(await valueOf(stack.rolloutReport), MOCK_ROLLOUT_REPORT);
});

/** The rollout Job's trigger and the Patroni StatefulSets' templates, of the registrations `runs`. */
function observed(runs: Registration[]) {
  const jobs = runs.filter((r) => r.type === TYPES.job && r.name === "dpc-rollout");
  t_assert(jobs.length === 1, `one rollout Job per run, got ${jobs.length}`);
  const templates = Object.fromEntries(
    runs.filter((r) => r.type === TYPES.statefulSet && DATABASE_GROUPS.includes(k8sName(r))).map((r) => [k8sName(r), JSON.stringify(spec(r).template)]),
  );
  return { trigger: spec(jobs[0]).template.metadata.annotations["dpc/trigger"] as string, job: jobs[0], templates };
}
function t_assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

async function run(tag: string, extra: Record<string, string>): Promise<Registration[]> {
  const before = registrations.length;
  const again = await loadKubernetesStack(extra, tag);
  await valueOf(again.appConnectionString);
  await settled();
  return registrations.slice(before);
}

test.serial("the trigger: a second run of the same configuration registers the same Job; a new image or new parameters a new trigger, parameters without touching a pod template", async (t) => {
  const same = await run("same", { postgresParameters: JSON.stringify({ work_mem: "16MB" }) });
  const first = observed(firstRun);
  const second = observed(same);
  t.regex(first.trigger, /^[0-9a-f]{64}$/);
  t.is(second.trigger, first.trigger);
  t.deepEqual(second.job.inputs, first.job.inputs, "identical Job inputs: no replacement, no run");
  t.deepEqual(second.templates, first.templates);

  const parameters = observed(await run("parameters", { postgresParameters: JSON.stringify({ work_mem: "32MB" }) }));
  t.not(parameters.trigger, first.trigger, "new parameters run the rollout (a reload or a rolling restart)");
  t.deepEqual(parameters.templates, first.templates, "parameters live in the DCS: no pod template changes");

  const image = observed(await run("image", { postgresParameters: JSON.stringify({ work_mem: "16MB" }), databaseImage: "registry.example.com/dpc-postgres:pg17-2" }));
  t.not(image.trigger, first.trigger, "a new database image makes the pods outdated: the rollout runs");
  t.notDeepEqual(image.templates["dpc-coordinator"], first.templates["dpc-coordinator"]);
  // The trigger is rolloutTrigger over the members, the parameters and the templates' digests.
  t.is(rolloutTrigger([], {}, []), rolloutTrigger([], {}, []));
  t.not(rolloutTrigger([], {}, ["a"]), rolloutTrigger([], {}, ["b"]));
});

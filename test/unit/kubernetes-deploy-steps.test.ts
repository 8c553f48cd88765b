// The deploy steps on Kubernetes, read from the objects the program registers (under mocks): the
// schema migrations and the post-deploy benchmark are Jobs of the deploy-steps image that run after
// the groups and the router, bounded in time and retries, with their input in a Secret, their result
// read back from a ConfigMap into the stack outputs; the Pulumi process itself dials nothing.
import test from "ava";
import { BENCHMARK_TYPE, CERTIFICATES_TYPE, MOCK_BENCHMARK_SUMMARY, MOCK_SCHEMA_OUTPUTS, SCHEMA_TYPE, byType, generatedPasswords, registrations, reveal, valueOf, plainStrings } from "./_pulumi-harness.ts";
import { APP_PASSWORD, DATABASE_GROUPS, STEPS_IMAGE, TYPES, container, k8sName, loadKubernetesStack, named, podSpec, resourceOptions, spec } from "./_kubernetes-stack.ts";
import { readStepResult, stepEgressPolicySpec } from "../../components/platform/kubernetes/deploy-step.ts";
import { SCHEMA_STEP_DEADLINE_SECONDS } from "../../components/schema.ts";

let stack: any;
test.before(async () => {
  stack = await loadKubernetesStack();
});

const job = (name: string) => named(TYPES.job, name);

test("the stack outputs are the results the Jobs wrote to their ConfigMaps", async (t) => {
  t.is(await valueOf(stack.schemaVersion), MOCK_SCHEMA_OUTPUTS.version);
  t.deepEqual(await valueOf(stack.benchmarkSummary), MOCK_BENCHMARK_SUMMARY);
});

test("nothing in the Pulumi process dials the cluster: no dynamic step resource, cluster addresses only inside Kubernetes objects", (t) => {
  t.is(byType(SCHEMA_TYPE).length, 0);
  t.is(byType(BENCHMARK_TYPE).length, 0);
  // Custom resources outside the kubernetes provider that hold a cluster address would be dialled from
  // here; the certificates resource holds them as names to sign, and dials nothing; the password
  // record in its in-cluster mode only records (test/unit/kubernetes-rotation-step.test.ts runs it).
  const recordOnly = (r: (typeof registrations)[number]) => (reveal(r.inputs) as { inCluster?: boolean }).inCluster === true;
  const dialling = registrations.filter(
    (r) => r.custom && !r.type.startsWith("kubernetes:") && r.type !== CERTIFICATES_TYPE && !recordOnly(r) && JSON.stringify(reveal(r.inputs)).includes("svc.cluster.local"),
  );
  t.deepEqual(dialling.map((r) => `${r.type} ${r.name}`), []);
});

test("each step is a Job of the deploy-steps image with the step's name as its only argument, its input a mounted Secret", (t) => {
  for (const [name, step] of [["dpc-schema", "schema"], ["dpc-benchmark", "benchmark"]] as const) {
    const main = container(job(name));
    t.is(main.image, STEPS_IMAGE, name);
    t.deepEqual(main.args, [step], name);
    t.is(main.command, undefined, `${name}: the image's entrypoint`);
    t.deepEqual(main.volumeMounts.find((m: any) => m.name === "input"), { name: "input", mountPath: "/etc/dpc-step", readOnly: true });
    t.deepEqual(podSpec(job(name)).volumes.find((v: any) => v.name === "input"), { name: "input", secret: { secretName: `${name}-input`, defaultMode: 0o440 } });
    // The environment names the result ConfigMap and the trigger; no value in it is secret.
    const env = Object.fromEntries(main.env.map((e: any) => [e.name, e.value ?? e.valueFrom]));
    t.is(env.DPC_STEP_RESULT_CONFIGMAP, `${name}-result`);
    t.regex(env.DPC_STEP_TRIGGER, /^[0-9a-f]{64}$/);
    t.is(env.DPC_STEP_TRIGGER, spec(job(name)).template.metadata.annotations["dpc/trigger"]);
    t.deepEqual(env.DPC_STEP_NAMESPACE, { fieldRef: { fieldPath: "metadata.namespace" } });
    t.is(podSpec(job(name)).serviceAccountName, "dpc-deploy-steps");
  }
  // The input Secret holds the connection URLs with their passwords, as a Pulumi secret.
  const schemaInput = named(TYPES.secret, "dpc-schema-input");
  t.true(plainStrings(schemaInput.inputs.stringData).length === 0, "stringData is a secret");
  const input = JSON.parse((reveal(schemaInput.inputs.stringData) as Record<string, string>)["input.json"]);
  t.regex(input.connectionString, /^postgresql:\/\/postgres:[^@]+@dpc-haproxy\.dpc\.svc\.cluster\.local:5000\/vectors$/);
  t.regex(input.poolerAdminConnectionString, /@dpc-pgbouncer\.dpc\.svc\.cluster\.local:6432\/pgbouncer$/);
  t.is(input.appPassword, APP_PASSWORD);
  const benchmarkInput = JSON.parse((reveal(named(TYPES.secret, "dpc-benchmark-input").inputs.stringData) as Record<string, string>)["input.json"]);
  t.regex(benchmarkInput.url, /^postgresql:\/\/app:[^@]+@dpc-pgbouncer\.dpc\.svc\.cluster\.local:6432\/vectors$/);
  t.is(benchmarkInput.schemaVersion, MOCK_SCHEMA_OUTPUTS.version);
  // No password anywhere in a Job (spec revealed: its trigger makes it a secret Output).
  const passwords = [APP_PASSWORD, ...generatedPasswords];
  for (const j of byType(TYPES.job)) {
    const text = JSON.stringify(reveal(j.inputs));
    t.false(passwords.some((p) => text.includes(p)), k8sName(j));
  }
});

test("the Jobs run after every Patroni group and HAProxy; PgBouncer after the schema (its lookup role); the benchmark after both", (t) => {
  const schema = job("dpc-schema");
  const urnsOf = (type: string, names: string[]) => names.map((n) => named(type, n).urn);
  for (const urn of [...urnsOf(TYPES.statefulSet, DATABASE_GROUPS), ...urnsOf(TYPES.deployment, ["dpc-haproxy"])]) {
    t.true(schema.dependencies.includes(urn), `schema Job waits for ${urn.split("::").pop()}`);
  }
  // Migration 011 creates the role PgBouncer's auth_query logs in as: PgBouncer's pods (a new
  // Deployment, or its new template on an upgrade) start only after the schema Job.
  const pgbouncer = named(TYPES.deployment, "dpc-pgbouncer");
  t.true(pgbouncer.dependencies.includes(schema.urn), "PgBouncer's Deployment waits for the schema Job");
  t.false(schema.dependencies.includes(pgbouncer.urn), "the schema Job waits for PgBouncer");
  const benchmark = job("dpc-benchmark");
  t.true(benchmark.dependencies.includes(schema.urn), "benchmark Job waits for the schema Job");
  t.true(benchmark.dependencies.includes(pgbouncer.urn), "benchmark Job waits for PgBouncer");
  // And for its own objects: the input, the result ConfigMap, the Role's binding, the egress policy.
  for (const [type, name] of [[TYPES.secret, "dpc-schema-input"], [TYPES.configMap, "dpc-schema-result"], [TYPES.roleBinding, "dpc-schema-result-writer"], [TYPES.networkPolicy, "dpc-deploy-steps"]]) {
    t.true(schema.dependencies.includes(named(type, name).urn), name);
  }
});

test("retries and time: backoffLimit, podFailurePolicy, activeDeadlineSeconds, and Pulumi's wait beyond the deadline", (t) => {
  for (const [name, deadline] of [["dpc-schema", SCHEMA_STEP_DEADLINE_SECONDS], ["dpc-benchmark", 1800]] as const) {
    const s = spec(job(name));
    t.is(s.backoffLimit, 2, name);
    t.is(s.activeDeadlineSeconds, deadline, name);
    t.is(s.template.spec.restartPolicy, "Never", name);
    t.deepEqual(s.podFailurePolicy.rules, [
      { action: "FailJob", onExitCodes: { containerName: "main", operator: "In", values: [3] } },
      { action: "Ignore", onPodConditions: [{ type: "DisruptionTarget", status: "True" }] },
    ]);
    // No ttlSecondsAfterFinished: a Job deleted by the cluster would be created again by the next `up`.
    t.is(s.ttlSecondsAfterFinished, undefined);
    const options = resourceOptions.get(job(name).urn)!;
    t.deepEqual(options.replaceOnChanges, ["spec"], `${name}: a new trigger is a new Job`);
    t.deepEqual(options.customTimeouts, { create: `${deadline + 300}s`, update: `${deadline + 300}s` });
    t.is((job(name).inputs.metadata as any).annotations["pulumi.com/replaceUnready"], "true");
    t.is((job(name).inputs.metadata as any).name, undefined, `${name}: auto-named, so a new run starts before the old Job goes`);
  }
  t.is(SCHEMA_STEP_DEADLINE_SECONDS, 1200);
});

test("the result ConfigMap is the step's to write: Pulumi ignores its data, a Role lets the step's ServiceAccount patch it and nothing else", (t) => {
  for (const name of ["dpc-schema", "dpc-benchmark"]) {
    const result = named(TYPES.configMap, `${name}-result`);
    t.deepEqual(resourceOptions.get(result.urn)!.ignoreChanges, ["data"]);
    const role = named(TYPES.role, `${name}-result-writer`);
    t.deepEqual((role.inputs as any).rules, [{ apiGroups: [""], resources: ["configmaps"], resourceNames: [`${name}-result`], verbs: ["get", "patch"] }]);
    const binding = named(TYPES.roleBinding, `${name}-result-writer`).inputs as any;
    t.deepEqual(binding.roleRef, { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: `${name}-result-writer` });
    t.deepEqual(binding.subjects, [{ kind: "ServiceAccount", name: "dpc-deploy-steps", namespace: "dpc" }]);
  }
  // The account's token reaches only the steps' pods (they ask for it).
  t.is((named(TYPES.serviceAccount, "dpc-deploy-steps").inputs as any).automountServiceAccountToken, false);
  for (const j of byType(TYPES.job)) t.true(podSpec(j).automountServiceAccountToken);
});

test("the steps' pods connect to HAProxy's read-write port, PgBouncer, DNS and the API server only", (t) => {
  const policy = spec(named(TYPES.networkPolicy, "dpc-deploy-steps"));
  t.deepEqual(policy, stepEgressPolicySpec("dpc"));
  t.deepEqual(policy.policyTypes, ["Egress"]);
  t.deepEqual(policy.podSelector.matchLabels, { "app.kubernetes.io/part-of": "dpc", "dpc/kind": "deploy-step" });
  for (const name of ["dpc-schema", "dpc-benchmark"]) t.like(spec(job(name)).template.metadata.labels, policy.podSelector.matchLabels);
  const rules = policy.egress.map((rule: any) => ({ to: rule.to?.[0]?.podSelector?.matchLabels?.["dpc/kind"] ?? "any", ports: rule.ports.map((p: any) => `${p.protocol}/${p.port}`) }));
  t.deepEqual(rules, [
    { to: "haproxy", ports: ["TCP/5000"] },
    { to: "pgbouncer", ports: ["TCP/6432"] },
    { to: "any", ports: ["UDP/53", "TCP/53"] },
    { to: "any", ports: ["TCP/443", "TCP/6443"] },
  ]);
});

test("a result is taken only when it is the completed Job's: missing or stale results fail the update", (t) => {
  t.deepEqual(readStepResult("dpc-schema", { result: '{"version":"008"}', trigger: "abc" }, "abc"), { version: "008" });
  t.throws(() => readStepResult("dpc-schema", {}, "abc"), { message: "deploy step dpc-schema: its Job completed but ConfigMap dpc-schema-result holds no result" });
  t.throws(() => readStepResult("dpc-schema", undefined, "abc"), { message: /holds no result/ });
  t.throws(() => readStepResult("dpc-schema", { result: "{}", trigger: "0123456789abcdef" }, "fedcba9876543210"), {
    message: "deploy step dpc-schema: ConfigMap dpc-schema-result holds the result of trigger 0123456789ab, not of fedcba987654",
  });
});

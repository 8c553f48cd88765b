// Worker scaling on Kubernetes, read from the objects the program registers under mocks: a Job of
// the deploy-steps image after the schema and every worker group, of its own kind and account (a
// Role that may scale only the worker StatefulSets above workerGroups, the ones that can be going),
// reaching HAProxy's read-write port and nothing else of the cluster; its trigger the same for the
// same workerGroups (a second `up` runs nothing) and new for another count. With fewer groups the
// program declares nothing of the going ones (Pulumi deletes them after the Job: see
// components/scaling-run.ts) and the Job may scale exactly those. Serial: later tests run the program again.
import test from "ava";
import { registrations, reveal, settled, valueOf, plainStrings, type Registration } from "./_pulumi-harness.ts";
import { DATABASE_GROUPS, STEPS_IMAGE, TYPES, container, k8sName, loadKubernetesStack, manifests, podSpec, resourceOptions, spec } from "./_kubernetes-stack.ts";
import { admitted, type Source } from "./_network-policy-eval.ts";
import { scalingRules, stepEgressPolicySpec } from "../../components/platform/kubernetes/deploy-step.ts";
import { goingCandidates, scalingTimes, scalingTrigger } from "../../components/scaling-run.ts";
import { parseClusterConfig, planTopology } from "../../components/spec.ts";
import type { ScalingStepInputs } from "../../components/scaling/step.ts";

let firstRun: Registration[] = [];
test.before(async () => {
  await loadKubernetesStack();
  firstRun = [...registrations];
});

const find = (runs: Registration[], type: string, name: string) => {
  const found = runs.find((r) => r.type === type && k8sName(r) === name);
  if (!found) throw new Error(`no ${type} ${name}`);
  return found;
};
const stepInput = (runs: Registration[]) => JSON.parse((reveal(find(runs, TYPES.secret, "dpc-scaling-input").inputs.stringData) as Record<string, string>)["input.json"]) as ScalingStepInputs;
const trigger = (runs: Registration[]) => spec(find(runs, TYPES.job, "dpc-scaling")).template.metadata.annotations["dpc/trigger"] as string;

async function run(tag: string, extra: Record<string, string>): Promise<Registration[]> {
  const before = registrations.length;
  const again = await loadKubernetesStack(extra, tag);
  await valueOf(again.appConnectionString);
  await settled();
  return registrations.slice(before);
}

test.serial("a Job of the deploy-steps image, `scaling`, its own account and kind; its input the wanted groups and the coordinator through HAProxy", (t) => {
  const job = find(firstRun, TYPES.job, "dpc-scaling");
  t.is(container(job).image, STEPS_IMAGE);
  t.deepEqual(container(job).args, ["scaling"]);
  t.is(podSpec(job).serviceAccountName, "dpc-scaling-step");
  t.is(spec(job).template.metadata.labels["dpc/kind"], "scaling-step");
  const input = stepInput(firstRun);
  const times = scalingTimes(parseClusterConfig({ platform: "kubernetes", databaseImage: "x", deployStepsImage: "y" }));
  t.deepEqual(
    { ...input, coordinatorUrl: undefined, ca: undefined },
    { namespace: "dpc", coordinatorUrl: undefined, ca: undefined, workerGroups: 6, workerStatefulSetPrefix: "dpc-worker", rebalanceTimeoutSeconds: 3600, stopTimeoutSeconds: 300 + 120, settleSeconds: 20 + 2 * 1 },
  );
  t.is(times.settleSeconds, input.settleSeconds);
  t.regex(input.coordinatorUrl, /^postgresql:\/\/postgres:[^@]+@dpc-haproxy\.dpc\.svc\.cluster\.local:5000\/vectors$/);
  t.is(spec(job).activeDeadlineSeconds, 600 + 3600 + 420 + 22);
  t.deepEqual(resourceOptions.get(job.urn)!.replaceOnChanges, ["spec"]);
  t.deepEqual(plainStrings(find(firstRun, TYPES.secret, "dpc-scaling-input").inputs.stringData), []);
});

test.serial("order: after the schema Job and every worker group's StatefulSet", (t) => {
  const job = find(firstRun, TYPES.job, "dpc-scaling");
  t.true(job.dependencies.includes(find(firstRun, TYPES.job, "dpc-schema").urn), "after the schema (the tables it moves exist)");
  for (const group of DATABASE_GROUPS) t.true(job.dependencies.includes(find(firstRun, TYPES.statefulSet, group).urn), `after ${group}`);
  // Nothing registered waits for it (its result is read back after it): the groups it drains are deleted by the engine after every step anyway.
  t.deepEqual(firstRun.filter((r) => r.dependencies.includes(job.urn)).map((r) => `${r.type} ${r.name}`), []);
});

test.serial("its Role may scale only the worker StatefulSets above workerGroups; its pods reach HAProxy's read-write port only", (t) => {
  const rules = (find(firstRun, TYPES.role, "dpc-scaling-pods").inputs as any).rules;
  const above = Array.from({ length: 64 - 6 }, (_, i) => `dpc-worker${7 + i}`);
  t.deepEqual(rules, scalingRules(above));
  t.deepEqual(rules[1], { apiGroups: ["apps"], resources: ["statefulsets/scale"], resourceNames: above, verbs: ["patch"] });
  t.false(rules.some((r: any) => r.resourceNames?.some((n: string) => DATABASE_GROUPS.includes(n))), "no declared group is the step's to scale");
  t.deepEqual((find(firstRun, TYPES.roleBinding, "dpc-scaling-pods").inputs as any).subjects, [{ kind: "ServiceAccount", name: "dpc-scaling-step", namespace: "dpc" }]);
  const policies = manifests().filter((m) => m.kind === "NetworkPolicy");
  const labels = (type: string, name: string) => spec(find(firstRun, type, name)).template.metadata.labels as Record<string, string>;
  const from: Source = { namespace: "dpc", labels: labels(TYPES.job, "dpc-scaling") };
  const to = (type: string, name: string, port: number) => ({ namespace: "dpc", labels: labels(type, name), port });
  t.true(admitted(policies, from, to(TYPES.deployment, "dpc-haproxy", 5000)));
  t.false(admitted(policies, from, to(TYPES.deployment, "dpc-pgbouncer", 6432)));
  t.false(admitted(policies, from, to(TYPES.statefulSet, "dpc-coordinator", 8008)));
  t.false(admitted(policies, from, to(TYPES.statefulSet, "dpc-worker1", 5432)));
  t.deepEqual(spec(find(firstRun, TYPES.networkPolicy, "dpc-scaling-step")), stepEgressPolicySpec("dpc", "scaling-step"));
  t.deepEqual(
    spec(find(firstRun, TYPES.networkPolicy, "dpc-scaling-step")).egress.map((rule: any) => rule.to?.[0]?.podSelector?.matchLabels?.["dpc/kind"] ?? "any"),
    ["haproxy", "any", "any"],
  );
});

test.serial("the trigger: the same for the same workerGroups; fewer groups: a new Job that may scale exactly the going ones, none of which is declared", async (t) => {
  const same = await run("same", {});
  t.is(trigger(same), trigger(firstRun));
  t.deepEqual(find(same, TYPES.job, "dpc-scaling").inputs, find(firstRun, TYPES.job, "dpc-scaling").inputs, "identical Job inputs: no replacement, no run");
  t.is(trigger(firstRun), scalingTrigger(6, "dpc-worker"));

  const fewer = await run("fewer", { workerGroups: "4" });
  t.not(trigger(fewer), trigger(firstRun));
  t.is(stepInput(fewer).workerGroups, 4);
  const rules = (find(fewer, TYPES.role, "dpc-scaling-pods").inputs as any).rules;
  t.deepEqual(rules[1].resourceNames.slice(0, 2), ["dpc-worker5", "dpc-worker6"]);
  t.deepEqual(goingCandidates(planTopology(parseClusterConfig({ workerGroups: "4" })), 4).slice(0, 3), ["dpc-worker5", "dpc-worker6", "dpc-worker7"]);
  // worker5 and worker6 are gone from the program: Pulumi deletes them after every step, the Job's included.
  const nameOf = (r: Registration) => (r.type.startsWith("kubernetes:") ? k8sName(r) : r.name);
  t.deepEqual(fewer.filter((r) => /dpc-worker[56]/.test(nameOf(r))).map((r) => `${r.type} ${r.name}`), [], "nothing of worker groups 5 and 6 is declared");
  // The kept groups' pods are not outdated by the change: the rollout replaces none of them.
  for (const kept of ["dpc-coordinator", "dpc-worker1", "dpc-worker4"]) {
    t.deepEqual(spec(find(fewer, TYPES.statefulSet, kept)).template, spec(find(firstRun, TYPES.statefulSet, kept)).template, `${kept}'s pod template unchanged`);
  }
  // The rollout no longer lists them, so it never deletes their pods.
  t.false(JSON.stringify((find(fewer, TYPES.role, "dpc-rollout-pods").inputs as any).rules).includes("dpc-worker5"));

  const more = await run("more", { workerGroups: "7" });
  t.is(stepInput(more).workerGroups, 7);
  t.true(find(more, TYPES.job, "dpc-scaling").dependencies.includes(find(more, TYPES.statefulSet, "dpc-worker7").urn), "the Job waits for the new group's StatefulSet");
});

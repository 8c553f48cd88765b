// Rollouts, drains and probes, from the registered objects and the pure functions they come from.
import test from "ava";
import { byType } from "./_pulumi-harness.ts";
import { DATABASE_GROUPS, TYPES, container, loadKubernetesStack, named, spec } from "./_kubernetes-stack.ts";
import { disruptionBudget, rolloutPlan } from "../../components/platform/kubernetes/disruption.ts";
import { etcdProbes, patroniProbes, quantityBytes, startupBudgetSeconds } from "../../components/platform/kubernetes/probes.ts";

test.before(async () => {
  await loadKubernetesStack();
});

test("Patroni groups update OnDelete (no pod restarts by itself); etcd rolls one member at a time", (t) => {
  for (const group of DATABASE_GROUPS) t.deepEqual(spec(named(TYPES.statefulSet, group)).updateStrategy, { type: "OnDelete" }, group);
  t.deepEqual(spec(named(TYPES.statefulSet, "dpc-etcd")).updateStrategy, { type: "RollingUpdate" });
});

test("budgets: no ready Patroni member may be evicted (a drain never takes a primary); etcd keeps its majority", (t) => {
  for (const group of DATABASE_GROUPS) {
    const budget = spec(named(TYPES.budget, group));
    t.deepEqual([budget.maxUnavailable, budget.unhealthyPodEvictionPolicy], [0, "AlwaysAllow"], group);
    t.deepEqual(budget.selector.matchLabels, spec(named(TYPES.statefulSet, group)).selector.matchLabels);
  }
  t.is(spec(named(TYPES.budget, "dpc-etcd")).maxUnavailable, 1);
  t.is(byType(TYPES.budget).length, DATABASE_GROUPS.length + 3);
  t.deepEqual([1, 3, 5, 7].map((n) => disruptionBudget("etcd", n)?.maxUnavailable), [0, 1, 2, 3]);
  t.is(disruptionBudget("haproxy", 1), undefined, "one router pod: a budget would block every drain");
});

test("rollout order: outdated replicas first, then a switchover to the synchronous standby, then the old primary", (t) => {
  t.deepEqual(
    rolloutPlan([
      { name: "g-0", role: "leader", updated: false },
      { name: "g-1", role: "replica", updated: false },
      { name: "g-2", role: "sync_standby", updated: false },
    ]),
    [
      { action: "restart", member: "g-1" },
      { action: "restart", member: "g-2" },
      { action: "switchover", from: "g-0", to: "g-2" },
      { action: "restart", member: "g-0" },
    ],
  );
  // An updated leader: only the outdated replicas; all updated: nothing.
  t.deepEqual(rolloutPlan([{ name: "g-0", role: "replica", updated: false }, { name: "g-1", role: "leader", updated: true }]), [{ action: "restart", member: "g-0" }]);
  t.deepEqual(rolloutPlan([{ name: "g-0", role: "leader", updated: true }, { name: "g-1", role: "sync_standby", updated: true }]), []);
  // One member: a restart with downtime, no switchover to make.
  t.deepEqual(rolloutPlan([{ name: "g-0", role: "leader", updated: false }]), [{ action: "restart", member: "g-0" }]);
  // No synchronous standby (synchronousMode off): any replica.
  t.deepEqual(rolloutPlan([{ name: "g-0", role: "leader", updated: false }, { name: "g-1", role: "replica", updated: true }]), [
    { action: "switchover", from: "g-0", to: "g-1" },
    { action: "restart", member: "g-0" },
  ]);
});

test("Patroni probes by meaning: readiness /readiness, liveness and startup /liveness, startup budget for a basebackup of the volume", (t) => {
  const probes = patroniProbes("10Gi");
  for (const group of DATABASE_GROUPS) {
    const main = container(named(TYPES.statefulSet, group));
    t.deepEqual({ startupProbe: main.startupProbe, readinessProbe: main.readinessProbe, livenessProbe: main.livenessProbe }, probes);
  }
  // HTTPS: Patroni's REST API speaks TLS only; the kubelet does not verify the certificate.
  t.deepEqual(probes.readinessProbe, { httpGet: { path: "/readiness", port: 8008, scheme: "HTTPS" }, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 });
  t.deepEqual(probes.livenessProbe, { httpGet: { path: "/liveness", port: 8008, scheme: "HTTPS" }, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 });
  // 10 GiB at 20 MiB/s is 512 s: the 600 s floor. 100 GiB: 5120 s.
  t.is(probes.startupProbe.periodSeconds * probes.startupProbe.failureThreshold, 600);
  t.is(startupBudgetSeconds("100Gi"), 5120);
  t.is(patroniProbes("100Gi").startupProbe.failureThreshold, 512);
  t.is(quantityBytes("1.5Gi"), 1.5 * 2 ** 30);
  t.is(quantityBytes("500M"), 5e8);
  t.throws(() => quantityBytes("ten"), { message: /not a Kubernetes quantity/ });
  // Never /health: 503 while a replica is cloned or rewound.
  for (const group of DATABASE_GROUPS) {
    const main = container(named(TYPES.statefulSet, group));
    t.false(JSON.stringify([main.startupProbe, main.readinessProbe, main.livenessProbe]).includes('"/health"'));
  }
});

test("etcd probes: liveness and startup on the member's own health (no quorum), readiness on a quorum read", (t) => {
  const main = container(named(TYPES.statefulSet, "dpc-etcd"));
  t.deepEqual({ startupProbe: main.startupProbe, readinessProbe: main.readinessProbe, livenessProbe: main.livenessProbe }, etcdProbes());
  t.is(main.livenessProbe.httpGet.path, "/health?serializable=true");
  t.is(main.startupProbe.httpGet.path, "/health?serializable=true");
  t.is(main.readinessProbe.httpGet.path, "/health");
});

// Who may reach what, read from the NetworkPolicies the program registers (default stack: nothing
// published), and the client path's pods: several, spread, with a budget.
import test from "ava";
import { byType } from "./_pulumi-harness.ts";
import { TYPES, k8sName, loadKubernetesStack, manifests, named, podSpec, resourceOptions, spec } from "./_kubernetes-stack.ts";
import { admitted, type Source } from "./_network-policy-eval.ts";

test.before(async () => {
  await loadKubernetesStack();
});

const policies = () => manifests().filter((m) => m.kind === "NetworkPolicy");
/** The labels of a workload's pods. */
const podLabels = (type: string, name: string) => spec(named(type, name)).template.metadata.labels as Record<string, string>;
const pod = (type: string, name: string): Source => ({ namespace: "dpc", labels: podLabels(type, name) });
const to = (type: string, name: string, port: number) => ({ namespace: "dpc", labels: podLabels(type, name), port });

const S = TYPES.statefulSet;
const D = TYPES.deployment;
const app: Source = { namespace: "shop", namespaceLabels: { "kubernetes.io/metadata.name": "shop" }, labels: { "dpc/client": "dpc" } };
const stranger: Source = { namespace: "shop", namespaceLabels: {}, labels: { app: "web" } };
const neighbour: Source = { namespace: "dpc", labels: { app: "debug" } };
// `pulumi up` no longer dials the cluster: a pod with the former deployer label gets nothing.
const formerDeployer: Source = { namespace: "ci", namespaceLabels: {}, labels: { "dpc/deployer": "dpc" } };
/** A deploy step's pod (the Job's template labels). */
const step = (name: string): Source => ({ namespace: "dpc", labels: podLabels(TYPES.job, name) });
const internet: Source = { ip: "203.0.113.5" };

test("each component admits only its clients", (t) => {
  const p = policies();
  const cases: [string, Source, ReturnType<typeof to>, boolean][] = [
    ["application -> PgBouncer", app, to(D, "dpc-pgbouncer", 6432), true],
    ["application -> HAProxy read-only", app, to(D, "dpc-haproxy", 5001), true],
    ["application -> HAProxy read-write (superuser path)", app, to(D, "dpc-haproxy", 5000), false],
    ["application -> PostgreSQL", app, to(S, "dpc-coordinator", 5432), false],
    ["application -> etcd", app, to(S, "dpc-etcd", 2379), false],
    ["application -> Prometheus", app, to(D, "dpc-prometheus", 9090), false],
    ["unlabelled pod elsewhere -> PgBouncer", stranger, to(D, "dpc-pgbouncer", 6432), false],
    ["unlabelled pod in the namespace -> PostgreSQL", neighbour, to(S, "dpc-worker1", 5432), false],
    ["unlabelled pod in the namespace -> Patroni REST", neighbour, to(S, "dpc-coordinator", 8008), false],
    ["the internet -> PgBouncer (nothing published)", internet, to(D, "dpc-pgbouncer", 6432), false],
    ["former deployer label -> HAProxy read-write", formerDeployer, to(D, "dpc-haproxy", 5000), false],
    ["former deployer label -> PgBouncer", formerDeployer, to(D, "dpc-pgbouncer", 6432), false],
    ["schema Job -> HAProxy read-write", step("dpc-schema"), to(D, "dpc-haproxy", 5000), true],
    ["schema Job -> PgBouncer (admin console: RECONNECT)", step("dpc-schema"), to(D, "dpc-pgbouncer", 6432), true],
    ["benchmark Job -> PgBouncer", step("dpc-benchmark"), to(D, "dpc-pgbouncer", 6432), true],
    ["schema Job -> HAProxy read-only", step("dpc-schema"), to(D, "dpc-haproxy", 5001), false],
    ["schema Job -> HAProxy stats", step("dpc-schema"), to(D, "dpc-haproxy", 7000), false],
    ["schema Job -> PostgreSQL", step("dpc-schema"), to(S, "dpc-coordinator", 5432), false],
    ["schema Job -> Patroni REST", step("dpc-schema"), to(S, "dpc-coordinator", 8008), false],
    ["benchmark Job -> etcd", step("dpc-benchmark"), to(S, "dpc-etcd", 2379), false],
    ["benchmark Job -> Prometheus", step("dpc-benchmark"), to(D, "dpc-prometheus", 9090), false],
    ["application -> a deploy step's pod", app, { namespace: "dpc", labels: podLabels(TYPES.job, "dpc-schema"), port: 8080 }, false],
    ["PgBouncer -> HAProxy read-write", pod(D, "dpc-pgbouncer"), to(D, "dpc-haproxy", 5000), true],
    ["PgBouncer -> PostgreSQL", pod(D, "dpc-pgbouncer"), to(S, "dpc-coordinator", 5432), false],
    ["HAProxy -> PostgreSQL", pod(D, "dpc-haproxy"), to(S, "dpc-coordinator", 5432), true],
    ["HAProxy -> Patroni REST", pod(D, "dpc-haproxy"), to(S, "dpc-coordinator", 8008), true],
    ["HAProxy -> etcd", pod(D, "dpc-haproxy"), to(S, "dpc-etcd", 2379), false],
    ["coordinator -> worker PostgreSQL (Citus)", pod(S, "dpc-coordinator"), to(S, "dpc-worker1", 5432), true],
    ["worker -> coordinator Patroni REST (Citus)", pod(S, "dpc-worker3"), to(S, "dpc-coordinator", 8008), true],
    ["worker replica -> its primary (replication)", pod(S, "dpc-worker2"), to(S, "dpc-worker2", 5432), true],
    ["Patroni -> etcd", pod(S, "dpc-worker6"), to(S, "dpc-etcd", 2379), true],
    ["Patroni -> etcd peer port", pod(S, "dpc-coordinator"), to(S, "dpc-etcd", 2380), false],
    ["etcd -> etcd peer port", pod(S, "dpc-etcd"), to(S, "dpc-etcd", 2380), true],
    ["Prometheus -> postgres_exporter", pod(D, "dpc-prometheus"), to(D, "dpc-coordinator-0-exporter", 9187), true],
    ["Prometheus -> Patroni /metrics", pod(D, "dpc-prometheus"), to(S, "dpc-coordinator", 8008), true],
    ["Prometheus -> HAProxy stats", pod(D, "dpc-prometheus"), to(D, "dpc-haproxy", 7000), true],
    ["Prometheus -> PostgreSQL", pod(D, "dpc-prometheus"), to(S, "dpc-coordinator", 5432), false],
    ["postgres_exporter -> PostgreSQL", pod(D, "dpc-worker1-1-exporter"), to(S, "dpc-worker1", 5432), true],
    ["Grafana -> Prometheus", pod(D, "dpc-grafana"), to(D, "dpc-prometheus", 9090), true],
    ["PgBouncer exporter -> PgBouncer", pod(D, "dpc-pgbouncer-exporter"), to(D, "dpc-pgbouncer", 6432), true],
  ];
  for (const [what, source, target, expected] of cases) t.is(admitted(p, source, target), expected, what);
  // Every pod of the namespace is isolated: the deny-all policy selects them all.
  t.deepEqual(spec(named(TYPES.networkPolicy, "dpc-deny-ingress")), { podSelector: {}, policyTypes: ["Ingress"] });
});

test("HAProxy and PgBouncer: 2 pods each, spread over nodes, a surge before any stops, a budget that keeps one", (t) => {
  for (const name of ["dpc-haproxy", "dpc-pgbouncer"]) {
    const deployment = named(D, name);
    t.is(spec(deployment).replicas, 2, name);
    t.deepEqual(spec(deployment).strategy, { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } });
    t.deepEqual(podSpec(deployment).affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey, "kubernetes.io/hostname");
    const budget = spec(named(TYPES.budget, name));
    t.is(budget.maxUnavailable, 1);
    t.deepEqual(budget.selector.matchLabels, spec(deployment).selector.matchLabels);
    // One address for all of its pods: the ClusterIP Service, which the other rendered files name.
    t.is(spec(named(TYPES.service, name)).type, "ClusterIP");
  }
  // Processes with state or a single identity stay at one pod, and have no budget.
  for (const name of ["dpc-prometheus", "dpc-grafana", "dpc-pgbouncer-exporter"]) {
    t.is(spec(named(D, name)).replicas, 1, name);
    t.false(byType(TYPES.budget).some((b) => k8sName(b) === name), name);
  }
  t.true(resourceOptions.size > 0);
});

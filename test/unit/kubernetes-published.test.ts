// A stack that asks to publish (kubernetesServiceType LoadBalancer with source ranges): the -public
// Services carry the ranges and keep the client's address, and the policies admit those ranges only,
// and only on the published ports.
import test from "ava";
import { byType } from "./_pulumi-harness.ts";
import { TYPES, k8sName, loadKubernetesStack, manifests, named, spec } from "./_kubernetes-stack.ts";
import { admitted } from "./_network-policy-eval.ts";

let stack: any;
test.before(async () => {
  stack = await loadKubernetesStack({ kubernetesServiceType: "LoadBalancer", kubernetesSourceRanges: "203.0.113.0/24,198.51.100.7/32" });
});

test("published: <member>-public LoadBalancers with the source ranges, the client's address kept", (t) => {
  const published = byType(TYPES.service)
    .filter((r) => k8sName(r).endsWith("-public"))
    .map((r) => [k8sName(r), spec(r).type, spec(r).ports.map((p: any) => [p.port, p.targetPort]), spec(r).loadBalancerSourceRanges, spec(r).externalTrafficPolicy]);
  const ranges = ["203.0.113.0/24", "198.51.100.7/32"];
  t.deepEqual(published.sort(), [
    ["dpc-grafana-public", "LoadBalancer", [[3000, 3000]], ranges, "Local"],
    ["dpc-haproxy-public", "LoadBalancer", [[5000, 5000], [5001, 5001]], ranges, "Local"],
    ["dpc-pgbouncer-public", "LoadBalancer", [[6432, 6432]], ranges, "Local"],
    ["dpc-prometheus-public", "LoadBalancer", [[9090, 9090]], ranges, "Local"],
  ]);
  // `pulumi up` does not wait for an external address (none comes without a load-balancer controller).
  for (const r of byType(TYPES.service).filter((r) => k8sName(r).endsWith("-public"))) {
    t.is((r.inputs.metadata as any).annotations["pulumi.com/skipAwait"], "true", k8sName(r));
  }
  // The in-cluster Services are awaited as usual.
  t.is((named(TYPES.service, "dpc-pgbouncer").inputs.metadata as any).annotations, undefined);
});

test("published: the policies admit the source ranges on published ports only", async (t) => {
  const policies = manifests().filter((m) => m.kind === "NetworkPolicy");
  const labels = (type: string, name: string) => spec(named(type, name)).template.metadata.labels;
  const target = (type: string, name: string, port: number) => ({ namespace: "dpc", labels: labels(type, name), port });
  const inside = { ip: "203.0.113.77" };
  const exact = { ip: "198.51.100.7" };
  const outside = { ip: "198.51.100.8" };
  t.true(admitted(policies, inside, target(TYPES.deployment, "dpc-pgbouncer", 6432)));
  t.true(admitted(policies, exact, target(TYPES.deployment, "dpc-haproxy", 5000)));
  t.false(admitted(policies, outside, target(TYPES.deployment, "dpc-pgbouncer", 6432)));
  t.false(admitted(policies, inside, target(TYPES.deployment, "dpc-haproxy", 7000)), "the stats port is not published");
  t.false(admitted(policies, inside, target(TYPES.statefulSet, "dpc-coordinator", 5432)));
  t.false(admitted(policies, inside, target(TYPES.statefulSet, "dpc-etcd", 2379)));
  // The stack outputs stay in-cluster names: the published address is the Service's status, not known here.
  t.is(await new Promise((r) => stack.pgbouncerEndpoint.apply?.(r) ?? r(stack.pgbouncerEndpoint)), "dpc-pgbouncer.dpc.svc.cluster.local:6432");
});

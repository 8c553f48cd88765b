import test from "ava";
import { removeInReverseDependencyOrder } from "../docker/destroy-order.ts";

const node = (urn: string, dependencies: string[] = [], custom = true) => ({ urn, dependencies, custom });

test("a resource is removed only after everything that depends on it, directly or through a component", async (t) => {
  const etcd = node("etcd");
  const component = node("group", ["etcd"], false);
  const patroni1 = node("patroni-1", ["group"]);
  const patroni2 = node("patroni-2", ["etcd"]);
  const router = node("router", ["patroni-1", "patroni-2"]);
  const started: string[] = [];
  const finished: string[] = [];
  await removeInReverseDependencyOrder([etcd, component, patroni1, patroni2, router], async (r) => {
    started.push(r.urn);
    await new Promise((resolve) => setTimeout(resolve, r.urn === "patroni-1" ? 30 : 5));
    finished.push(r.urn);
  });
  t.deepEqual(started[0], "router");
  t.deepEqual(new Set(started.slice(1, 3)), new Set(["patroni-1", "patroni-2"]), "unrelated resources go at the same time");
  t.deepEqual(started[3], "etcd", "etcd waits for the slower of the two");
  t.deepEqual(finished, ["router", "patroni-2", "patroni-1", "etcd"]);
  t.false(started.includes("group"), "components are not removed by a provider");
});

test("a cycle is reported, not waited on forever", async (t) => {
  await t.throwsAsync(removeInReverseDependencyOrder([node("a", ["b"]), node("b", ["a"])], async () => undefined), { message: /dependency cycle: a -> b -> a|dependency cycle: b -> a -> b/ });
});

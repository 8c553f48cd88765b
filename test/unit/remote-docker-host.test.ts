// A stack for a remote Docker host that deletes its data with it: endpointHost names the host in every
// published endpoint of the outputs (and the connection string), retainDataOnDestroy: false
// registers the data volumes without retainOnDelete.
import test from "ava";
import * as pulumi from "@pulumi/pulumi";
import { byType, devStackConfig, key, settled, valueOf } from "./_pulumi-harness.ts";
import { optionsOf } from "./_resource-options.ts";

let stack: any;
test.before(async () => {
  pulumi.runtime.setAllConfig({ ...devStackConfig(), [key("endpointHost")]: "db.example.com", [key("retainDataOnDestroy")]: "false" });
  stack = await import("../../index.ts");
  await valueOf(stack.appConnectionString);
  await settled();
});

test("every published endpoint in the outputs names endpointHost", async (t) => {
  t.is(stack.pgbouncerEndpoint, "db.example.com:6432");
  t.is(stack.readWriteEndpoint, "db.example.com:5000");
  t.is(stack.readOnlyEndpoint, "db.example.com:5001");
  t.is(await valueOf(stack.prometheusEndpoint), "db.example.com:9090");
  t.is(await valueOf(stack.grafanaEndpoint), "db.example.com:3000");
  t.regex(await valueOf(stack.appConnectionString), /^postgresql:\/\/app:[^@]+@db\.example\.com:6432\/vectors$/);
  // etcd is reached on the cluster network only.
  t.true(stack.etcdEndpoints.every((e: string) => e.startsWith("https://dpc-etcd-")));
});

test("retainDataOnDestroy false: the data volumes are deleted with the stack", (t) => {
  const volumes = byType("docker:index/volume:Volume");
  t.true(volumes.length >= 18);
  for (const volume of volumes) t.false(optionsOf(volume.urn).retainOnDelete, volume.name);
});

// The program under mocks with the options the dev stack leaves at their defaults: the post-deploy
// benchmark switched off, Prometheus and Grafana on other host ports, Grafana's admin password
// generated. A file of its own: each test file runs in a fresh process, so one program per file.
import test from "ava";
import * as pulumi from "@pulumi/pulumi";
import {
  BENCHMARK_TYPE,
  MOCK_SCHEMA_OUTPUTS,
  SCHEMA_TYPE,
  byName,
  byType,
  containers,
  devStackConfig,
  generatedPasswords,
  key,
  passwordLeaks,
  registrations,
  reveal,
  settled,
  valueOf,
} from "./_pulumi-harness.ts";

let stack: any;
test.before(async () => {
  pulumi.runtime.setAllConfig({
    ...devStackConfig(),
    [key("benchmarkEnabled")]: "false",
    [key("prometheusPort")]: "19090",
    [key("grafanaPort")]: "13000",
  });
  stack = await import("../../index.ts");
  await valueOf(stack.appConnectionString);
  await settled();
});

test("benchmarkEnabled false: no BenchmarkRun, no benchmarkSummary; the Schema is still applied", async (t) => {
  t.is(byType(BENCHMARK_TYPE).length, 0);
  t.is(stack.benchmarkSummary, undefined);
  t.is(byType(SCHEMA_TYPE).length, 1);
  t.is(await valueOf(stack.schemaVersion), MOCK_SCHEMA_OUTPUTS.version);
});

test("Prometheus and Grafana published on the configured host ports, bound to the Docker host's loopback (monitoringPublishAddress)", async (t) => {
  const published = containers()
    .filter((c) => ((c.inputs.ports as unknown[]) ?? []).length > 0)
    .map((c) => [c.name, c.inputs.ports])
    .filter(([name]) => /prometheus|grafana/.test(name as string));
  t.deepEqual(published.sort(), [
    ["dpc-grafana", [{ internal: 3000, external: 13000, ip: "127.0.0.1", protocol: "tcp" }]],
    ["dpc-prometheus", [{ internal: 9090, external: 19090, ip: "127.0.0.1", protocol: "tcp" }]],
  ]);
  t.is(await valueOf(stack.prometheusEndpoint), "localhost:19090");
  t.is(await valueOf(stack.grafanaEndpoint), "localhost:13000");
});

test("a generated Grafana admin password: a secret output, in a 0600 file, never plain in any input", async (t) => {
  const generated = "generated-dpc-monitoring-grafana-admin-password";
  t.true(generatedPasswords.includes(generated));
  const random = byName("dpc-monitoring-grafana-admin-password");
  t.is(random.parent, byName("dpc-monitoring").urn);
  t.is(random.inputs.special, false);
  t.true(await pulumi.isSecret(stack.grafanaAdminPassword));
  t.is(await valueOf(stack.grafanaAdminPassword), generated);
  const uploads = reveal(byName("dpc-grafana").inputs.uploads) as { file: string; content: string; permissions: string }[];
  const file = uploads.find((u) => u.file === "/etc/dpc/grafana/admin-password")!;
  t.deepEqual([file.content, file.permissions], [generated, "0600"]);
  // Every password (all generated here) stays inside secrets in every registration.
  // The cluster's five, Grafana's, the exporters' role's, PgBouncer's lookup and admin credentials and
  // etcd's fingerprint key.
  t.is(generatedPasswords.length, 10);
  t.deepEqual(passwordLeaks(generatedPasswords), []);
  t.true(registrations.length > 0);
});

// The Kubernetes deploy step's entry point (components/in-cluster-step.ts) run against the real local
// cluster: it reads its input file as the Job's pod does, applies the migrations through HAProxy's
// read-write listener and PgBouncer's admin console with the real schema step, and writes its result
// as a merge patch to a stand-in for the Kubernetes API; the result is what the program would read
// back into the stack outputs.
import test from "ava";
import { createServer } from "node:http";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { runInClusterStep } from "../../components/in-cluster-step.ts";
import { patchConfigMapData } from "../../components/platform/kubernetes/result-writer.ts";
import { readStepResult } from "../../components/platform/kubernetes/deploy-step.ts";
import { migrationsFingerprint, schemaTrigger } from "../../components/schema.ts";
import type { SchemaStepInputs } from "../../components/schema-apply.ts";
import { latestVersion, renderMigrations } from "../../sql/migrations.ts";
import { runningCluster } from "./context.ts";

const cluster = runningCluster();

test("the schema step as a Job's pod runs it: applied through the router, its result patched into the ConfigMap", async (t) => {
  const input: SchemaStepInputs = {
    connectionString: cluster.primaryUrl(cluster.config.database),
    poolerAdminConnectionString: cluster.pgbouncerUrl("admin", "pgbouncer"),
    appPassword: cluster.secrets().app,
    config: cluster.config,
    migrationsFingerprint: migrationsFingerprint(cluster.config),
    timeoutSeconds: 60,
  };
  const trigger = schemaTrigger("a-trigger-key-for-this-test", input);
  const dir = mkdtempSync(join(tmpdir(), "dpc-step-"));
  writeFileSync(join(dir, "input.json"), JSON.stringify(input), { mode: 0o600 });

  // The API server's stand-in keeps the ConfigMap's data as a merge patch leaves it.
  const configMap: Record<string, string> = {};
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      if (req.method !== "PATCH" || req.url !== "/api/v1/namespaces/dpc/configmaps/dpc-schema-result" || req.headers.authorization !== "Bearer token") {
        res.writeHead(403).end(JSON.stringify({ message: "forbidden" }));
        return;
      }
      Object.assign(configMap, JSON.parse(body).data);
      res.writeHead(200).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const api = { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, token: "token" };
  const lines: string[] = [];
  try {
    const started = Date.now();
    const status = await runInClusterStep({
      env: { DPC_STEP_RESULT_CONFIGMAP: "dpc-schema-result", DPC_STEP_TRIGGER: trigger, DPC_STEP_NAMESPACE: "dpc" },
      argv: ["schema"],
      inputDir: dir,
      report: (namespace, name, data) => patchConfigMapData(api, namespace, name, data),
      log: (line) => lines.push(line),
    });
    t.log(`schema step: exit ${status} after ${((Date.now() - started) / 1000).toFixed(1)} s; ${lines.join(" | ")}`);
    t.is(status, 0);
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
  // What the program reads back: the version of the migrations this config renders, for this trigger.
  const result = readStepResult("dpc-schema", configMap, trigger) as { version: string; applied: string[]; citus: boolean; notes: string[] };
  t.is(result.version, latestVersion(renderMigrations(cluster.config, { citus: true, hnswAccessMethod: "hnsw" })));
  t.true(result.citus);
  // `up` applied them already: the step is idempotent and finds nothing pending.
  t.deepEqual(result.applied, []);
  t.true(result.notes.some((n) => n.startsWith("nothing to apply")));
  t.false(lines.join("\n").includes(cluster.secrets().superuser), "no password in the step's log");
});

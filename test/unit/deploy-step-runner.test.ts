// What a deploy step's pod runs (components/in-cluster-step.ts) with fake steps, and how it writes its
// result (components/platform/kubernetes/result-writer.ts) to a local HTTP server standing in for the
// Kubernetes API: the request a real API server would get, and its refusals.
import test from "ava";
import { createServer, type IncomingMessage } from "node:http";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { runInClusterStep, type InClusterStepOptions } from "../../components/in-cluster-step.ts";
import { inClusterAccess, patchConfigMapData } from "../../components/platform/kubernetes/result-writer.ts";
import { KubernetesApiError } from "../../components/platform/kubernetes/api-request.ts";
import { RolloutInputError } from "../../components/rollout/step.ts";

const ENV = { DPC_STEP_RESULT_CONFIGMAP: "dpc-schema-result", DPC_STEP_TRIGGER: "t".repeat(64), DPC_STEP_NAMESPACE: "dpc" };

function withInput(input: unknown) {
  const dir = mkdtempSync(join(tmpdir(), "dpc-step-"));
  writeFileSync(join(dir, "input.json"), JSON.stringify(input));
  return { dir, [Symbol.dispose]: () => rmSync(dir, { recursive: true, force: true }) };
}

function run(options: Partial<InClusterStepOptions> & { dir: string }) {
  const reports: { namespace: string; name: string; data: Record<string, string> }[] = [];
  const lines: string[] = [];
  const status = runInClusterStep({
    env: ENV,
    argv: ["schema"],
    inputDir: options.dir,
    report: async (namespace, name, data) => void reports.push({ namespace, name, data }),
    log: (line) => lines.push(line),
    ...options,
  });
  return { status, reports, lines };
}

test("a step that succeeds reports its result with the trigger it ran for, and exits 0", async (t) => {
  using input = withInput({ connectionString: "postgresql://u:secret@h:5000/db" });
  const seen: unknown[] = [];
  const steps = {
    schema: async (given: unknown) => (seen.push(given), { version: "008_grants", applied: ["008_grants"], citus: true, notes: [] }),
    benchmark: async () => t.fail("not this step"),
  };
  const { status, reports, lines } = run({ dir: input.dir, steps });
  t.is(await status, 0);
  t.deepEqual(seen, [{ connectionString: "postgresql://u:secret@h:5000/db" }]);
  t.deepEqual(reports, [
    { namespace: "dpc", name: "dpc-schema-result", data: { result: '{"version":"008_grants","applied":["008_grants"],"citus":true,"notes":[]}', trigger: ENV.DPC_STEP_TRIGGER } },
  ]);
  t.false(lines.join("\n").includes("secret"), "the input's password is never logged");
});

test("failures: final ones exit 3 (the Job fails at once), a database that did not answer or a lost report exit 1 (a new pod)", async (t) => {
  using input = withInput({});
  const failing = (error: Error) => ({ schema: async () => Promise.reject(error), benchmark: async () => Promise.reject(error) });
  const sqlError = Object.assign(new Error("migration 004_distribution failed: syntax error"), { code: "42601" });
  t.is(await run({ dir: input.dir, steps: failing(sqlError) }).status, 3);
  t.is(await run({ dir: input.dir, steps: failing(Object.assign(new Error("password authentication failed"), { code: "28P01" })) }).status, 3);
  t.is(await run({ dir: input.dir, steps: failing(new Error("schema: no leader answered at h:5000 within 600 s (200 attempts)")) }).status, 1);
  t.is(await run({ dir: input.dir, steps: failing(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" })) }).status, 1);
  // Any benchmark failure is worth another pod (within backoffLimit).
  t.is(await run({ dir: input.dir, argv: ["benchmark"], steps: failing(sqlError) }).status, 1);
  const lost = run({ dir: input.dir, steps: { schema: async () => ({}), benchmark: async () => ({}) }, report: () => Promise.reject(new Error("HTTP 403")) });
  t.is(await lost.status, 1);
  t.regex(lost.lines.join("\n"), /done, but its result did not reach ConfigMap dpc-schema-result: HTTP 403/);
});

test("the rollout: a step not done in time or an API that did not answer exit 1 (a new pod resumes it); bad input and API refusals exit 3", async (t) => {
  using input = withInput({});
  const failing = (error: Error) => ({ rollout: async () => Promise.reject(error) });
  const status = (error: Error) => run({ dir: input.dir, argv: ["rollout"], steps: failing(error) }).status;
  t.is(await status(new Error("rollout: pod dpc-worker1-1 recreated, ready and streaming: not within 300 s")), 1);
  t.is(await status(Object.assign(new Error("connect ECONNREFUSED 10.96.0.1:443"), { code: "ECONNREFUSED" })), 1);
  t.is(await status(new KubernetesApiError("GET pods of dpc/dpc-worker1: HTTP 500: etcdserver: leader changed", 500)), 1);
  t.is(await status(new RolloutInputError("rollout: invalid input (1 problems): namespace: got \"\"; allowed: a DNS label")), 3);
  t.is(await status(new KubernetesApiError('DELETE pod dpc/dpc-worker1-0: HTTP 403: pods "dpc-worker1-0" is forbidden', 403)), 3);
  t.is(await status(new KubernetesApiError("GET statefulset dpc/dpc-worker9: HTTP 404: not found", 404)), 3);
});

test("bad invocations exit 3 and say what is allowed", async (t) => {
  using input = withInput({});
  const unknown = run({ dir: input.dir, argv: ["vacuum"] });
  t.is(await unknown.status, 3);
  t.regex(unknown.lines[0], /got step "vacuum".*allowed: schema or benchmark or rollout/);
  const noEnv = run({ dir: input.dir, env: {} });
  t.is(await noEnv.status, 3);
  t.regex(noEnv.lines[0], /no DPC_STEP_RESULT_CONFIGMAP, DPC_STEP_TRIGGER, DPC_STEP_NAMESPACE/);
  const noInput = run({ dir: join(input.dir, "missing") });
  t.is(await noInput.status, 3);
  t.regex(noInput.lines[0], /cannot read its input input\.json/);
});

/** A stand-in API server: records each request, answers with `status`. */
async function fakeApi(status: number, body = "{}") {
  const requests: { method?: string; url?: string; headers: IncomingMessage["headers"]; body: string }[] = [];
  const server = createServer((req, res) => {
    let text = "";
    req.on("data", (chunk) => (text += chunk));
    req.on("end", () => {
      requests.push({ method: req.method, url: req.url, headers: req.headers, body: text });
      res.writeHead(status, { "content-type": "application/json" }).end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, requests, [Symbol.asyncDispose]: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

test("the result is a JSON merge patch of the ConfigMap's data, with the ServiceAccount's token", async (t) => {
  await using api = await fakeApi(200);
  await patchConfigMapData({ url: api.url, token: "sa-token" }, "dpc", "dpc-schema-result", { result: "{}", trigger: "abc" });
  t.is(api.requests.length, 1);
  const [request] = api.requests;
  t.is(request.method, "PATCH");
  t.is(request.url, "/api/v1/namespaces/dpc/configmaps/dpc-schema-result");
  t.is(request.headers["content-type"], "application/merge-patch+json");
  t.is(request.headers.authorization, "Bearer sa-token");
  t.deepEqual(JSON.parse(request.body), { data: { result: "{}", trigger: "abc" } });
});

test("a refusal names the status and the API's message, never the token", async (t) => {
  await using api = await fakeApi(403, JSON.stringify({ kind: "Status", message: 'configmaps "x" is forbidden: User "system:serviceaccount:dpc:dpc-deploy-steps" cannot patch resource' }));
  const error = await t.throwsAsync(patchConfigMapData({ url: api.url, token: "sa-token" }, "dpc", "x", { result: "{}" }));
  t.regex(error!.message, /^PATCH configmap dpc\/x: HTTP 403: configmaps "x" is forbidden/);
  t.false(error!.message.includes("sa-token"));
});

test("the pod's view of the API: the service's address from the environment, the mounted token and CA", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "dpc-sa-"));
  try {
    writeFileSync(join(dir, "token"), "tok\n");
    writeFileSync(join(dir, "ca.crt"), "PEM");
    t.deepEqual(inClusterAccess({ KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443" }, dir), { url: "https://10.96.0.1:443", token: "tok", ca: "PEM" });
    t.is(inClusterAccess({ KUBERNETES_SERVICE_HOST: "fd00::1", KUBERNETES_SERVICE_PORT: "443" }, dir).url, "https://[fd00::1]:443");
    t.is(inClusterAccess({}, dir).url, "https://kubernetes.default.svc:443");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

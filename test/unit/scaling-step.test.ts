// The scaling step (components/scaling/step.ts) with a fake Citus side and a fake StatefulSet API:
// out rebalances and stops nothing; in drains first, then scales the going StatefulSets to 0, waits
// until their pods are gone and the settle time has passed, and only then removes their rows; a
// failed drain stops nothing and removes nothing, and fails the Job for good (EXIT_FINAL), as does a
// refused rotation login; the scale API over a stand-in API server (PATCH of the scale subresource,
// a set already gone).
import test from "ava";
import { createServer } from "node:http";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { runScalingStep, ScalingInputError, type CitusScaling, type ScalingStepInputs } from "../../components/scaling/step.ts";
import { ScalingError } from "../../components/scaling/citus-workers.ts";
import { kubernetesScaler } from "../../components/platform/kubernetes/scale-api.ts";
import { runInClusterStep } from "../../components/in-cluster-step.ts";
import { EXIT_FINAL } from "../../components/platform/kubernetes/deploy-step.ts";

const INPUTS: ScalingStepInputs = {
  namespace: "dpc",
  coordinatorUrl: "postgresql://postgres:pw@dpc-haproxy.dpc.svc.cluster.local:5000/vectors",
  workerGroups: 2,
  workerStatefulSetPrefix: "dpc-worker",
  rebalanceTimeoutSeconds: 60,
  stopTimeoutSeconds: 30,
  settleSeconds: 22,
};
const spread = (shards: Record<string, number>) => [{ colocationId: 1, table: "claude_flow.memory_entries", tables: ["claude_flow.memory_entries"], shards }];

function fakes(registered: number[], options: { drainFails?: boolean; podsStay?: boolean } = {}) {
  const calls: string[] = [];
  const pods = new Map<string, number>([["dpc-worker3", 2]]);
  const citus: CitusScaling = {
    registered: async () => (calls.push("registered"), registered),
    scaleOut: async (_url, groups) => {
      calls.push(`scaleOut ${groups}`);
      return { registered, before: spread({ "1": 6, "2": 6 }), after: spread({ "1": 4, "2": 4, "3": 4 }), job: { jobId: 7, state: "finished", moves: 4, referenceTableCopies: 1, mode: "force_logical", seconds: 12 }, seconds: 13 };
    },
    drain: async (_url, keep) => {
      calls.push(`drain above ${keep}`);
      if (options.drainFails) throw new ScalingError("draining worker group(s) 3 failed, so nothing was removed (they take shards again): could not connect");
      return { drained: [3], before: spread({ "1": 4, "2": 4, "3": 4 }), after: spread({ "1": 6, "2": 6 }), job: { jobId: 8, state: "finished", moves: 4, referenceTableCopies: 0, mode: "force_logical", seconds: 9 }, seconds: 10 };
    },
    remove: async (_url, keep) => (calls.push(`remove above ${keep}`), { removed: ["3 dpc-worker3-0.dpc-worker3.dpc.svc.cluster.local:5432 primary"] }),
  };
  const statefulSets = {
    scaleToZero: async (set: string) => void calls.push(`scale ${set} 0`),
    podsLeft: async (set: string) => {
      const left = pods.get(set) ?? 0;
      calls.push(`pods ${set}: ${left}`);
      if (!options.podsStay && left > 0) pods.set(set, left - 1);
      return Array.from({ length: left }, (_, i) => `${set}-${i}`);
    },
  };
  const sleep = async (ms: number) => void calls.push(`sleep ${ms}`);
  return { calls, citus, statefulSets, sleep };
}

test("out: no group above workerGroups registered: the rebalance runs, nothing is scaled or removed", async (t) => {
  const f = fakes([1, 2]);
  const result = await runScalingStep({ ...INPUTS, workerGroups: 3 }, { citus: f.citus, statefulSets: f.statefulSets, sleep: f.sleep });
  t.deepEqual(f.calls, ["registered", "scaleOut 3"]);
  t.like(result, { direction: "out", workerGroups: 3, registered: [1, 2], moves: 4, drained: [], stopped: [], removed: [] });
  t.deepEqual(result.shards, [{ tables: ["claude_flow.memory_entries"], shards: { "1": 4, "2": 4, "3": 4 } }]);
});

test("in: drained first; then the going StatefulSet scaled to 0, its pods waited for, the settle time, and only then its rows removed", async (t) => {
  const f = fakes([1, 2, 3]);
  const result = await runScalingStep(INPUTS, { citus: f.citus, statefulSets: f.statefulSets, sleep: f.sleep, pollMs: 500 });
  t.deepEqual(f.calls, ["registered", "drain above 2", "scale dpc-worker3 0", "pods dpc-worker3: 2", "sleep 500", "pods dpc-worker3: 1", "sleep 500", "pods dpc-worker3: 0", "sleep 22000", "remove above 2"]);
  t.like(result, { direction: "in", workerGroups: 2, moves: 4, drained: [3], stopped: ["dpc-worker3"] });
  t.deepEqual(result.shards, [{ tables: ["claude_flow.memory_entries"], shards: { "1": 6, "2": 6 } }]);
});

test("in: a failed drain stops nothing and removes nothing; the Job fails for good with Citus' reason", async (t) => {
  const f = fakes([1, 2, 3], { drainFails: true });
  await t.throwsAsync(runScalingStep(INPUTS, { citus: f.citus, statefulSets: f.statefulSets, sleep: f.sleep }), { instanceOf: ScalingError, message: /draining worker group\(s\) 3 failed, so nothing was removed/ });
  t.deepEqual(f.calls, ["registered", "drain above 2"]);
  // As the Job's pod runs it: exit status EXIT_FINAL (podFailurePolicy FailJob), the reason in its log.
  const dir = mkdtempSync(join(tmpdir(), "dpc-scaling-"));
  try {
    writeFileSync(join(dir, "input.json"), JSON.stringify(INPUTS));
    const lines: string[] = [];
    const status = await runInClusterStep({
      env: { DPC_STEP_RESULT_CONFIGMAP: "dpc-scaling-result", DPC_STEP_TRIGGER: "t", DPC_STEP_NAMESPACE: "dpc" },
      argv: ["scaling"],
      inputDir: dir,
      steps: { scaling: (input: ScalingStepInputs, log) => runScalingStep(input, { citus: fakes([1, 2, 3], { drainFails: true }).citus, statefulSets: f.statefulSets, log }) },
      report: async () => t.fail("no result for a refused drain"),
      log: (line) => lines.push(line),
    });
    t.is(status, EXIT_FINAL);
    t.regex(lines.join("\n"), /deploy step scaling failed for good: draining worker group\(s\) 3 failed/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("in: pods that do not go fail the step with the set's name; the rows stay", async (t) => {
  const f = fakes([1, 2, 3], { podsStay: true });
  let clock = 0;
  const realNow = Date.now;
  Date.now = () => realNow() + clock;
  try {
    const sleep = async (ms: number) => void (clock += ms);
    await t.throwsAsync(runScalingStep(INPUTS, { citus: f.citus, statefulSets: f.statefulSets, sleep, pollMs: 10_000 }), {
      instanceOf: ScalingError,
      message: /^dpc-worker3: pods dpc-worker3-0, dpc-worker3-1 still there 30 s after its scale went to 0; .*pg_dist_node rows are kept/,
    });
  } finally {
    Date.now = realNow;
  }
  t.false(f.calls.some((c) => c.startsWith("remove")));
});

test("bad input is refused before anything is dialled, for good", async (t) => {
  const f = fakes([1, 2, 3]);
  const error = await t.throwsAsync(runScalingStep({ ...INPUTS, workerGroups: 0, workerStatefulSetPrefix: "Bad_" }, { citus: f.citus, statefulSets: f.statefulSets }), { instanceOf: ScalingInputError });
  t.regex(error!.message, /workerGroups: got 0/);
  t.regex(error!.message, /workerStatefulSetPrefix: got "Bad_"/);
  t.deepEqual(f.calls, []);
});

test("the rotation step's failures: a refused login fails the Job for good, a database that does not answer is retried", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "dpc-rotation-"));
  try {
    writeFileSync(join(dir, "input.json"), "{}");
    const status = (error: Error) =>
      runInClusterStep({
        env: { DPC_STEP_RESULT_CONFIGMAP: "dpc-rotation-result", DPC_STEP_TRIGGER: "t", DPC_STEP_NAMESPACE: "dpc" },
        argv: ["rotation"],
        inputDir: dir,
        steps: { rotation: async () => Promise.reject(error) },
        report: async () => undefined,
        log: () => undefined,
      });
    const refused = Object.assign(new Error("password authentication failed"), { code: "28P01" });
    t.is(await status(new Error("rotation: the database step failed (attempt 1): password authentication failed", { cause: refused })), EXIT_FINAL);
    const down = Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
    t.is(await status(new Error("rotation: the database step failed (attempt 9): connect ECONNREFUSED", { cause: down })), 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the scale API: PATCH of the scale subresource as a merge patch, the pods by the set's selector, a set already gone has none", async (t) => {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      seen.push(`${req.method} ${req.url} ${req.headers["content-type"] ?? ""} ${body}`.trim());
      const answer = (status: number, value: unknown) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(value));
      if (req.headers.authorization !== "Bearer tok") return answer(401, { message: "Unauthorized" });
      if (req.url?.includes("dpc-worker9")) return answer(404, { message: "statefulsets.apps \"dpc-worker9\" not found" });
      if (req.method === "PATCH") return answer(200, { spec: { replicas: 0 } });
      if (req.url === "/apis/apps/v1/namespaces/dpc/statefulsets/dpc-worker3") return answer(200, { spec: { selector: { matchLabels: { "app.kubernetes.io/component": "dpc-worker3" } } } });
      return answer(200, { items: [{ metadata: { name: "dpc-worker3-1" } }] });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const scaler = kubernetesScaler({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, token: "tok" }, "dpc");
    await scaler.scaleToZero("dpc-worker3");
    t.deepEqual(await scaler.podsLeft("dpc-worker3"), ["dpc-worker3-1"]);
    await scaler.scaleToZero("dpc-worker9");
    t.deepEqual(await scaler.podsLeft("dpc-worker9"), []);
    t.deepEqual(seen.slice(0, 3), [
      'PATCH /apis/apps/v1/namespaces/dpc/statefulsets/dpc-worker3/scale application/merge-patch+json {"spec":{"replicas":0}}',
      "GET /apis/apps/v1/namespaces/dpc/statefulsets/dpc-worker3",
      "GET /api/v1/namespaces/dpc/pods?labelSelector=app.kubernetes.io%2Fcomponent%3Ddpc-worker3",
    ]);
  } finally {
    server.close();
  }
});

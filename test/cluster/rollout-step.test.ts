// The Kubernetes rollout step's entry point (components/in-cluster-step.ts -> components/rollout/step.ts)
// run against the real local cluster, with the real Patroni REST API, PgBouncer and HAProxy, and a
// stand-in for the Kubernetes API (HTTP, bearer token) whose StatefulSets are the local Patroni groups:
// its pods' readiness is Patroni's /readiness (the probe the platform declares), and a DELETE stops
// the member's Patroni with SIGTERM (as the kubelet stops a pod) and starts it again from the "new
// template". The pods of worker group 1 and of the coordinator group are outdated, worker group 2's
// are not. Under writes through PgBouncer to a shard on worker group 1: the step deletes the pods
// replicas first and the former leaders last, one switchover per rolled group (the coordinator's with
// PgBouncer paused), worker group 2 untouched, 0 failed and 0 lost writes, its report in the ConfigMap.
import test from "ava";
import { request } from "../../components/https.ts";
import { createServer, type Server } from "node:http";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { runInClusterStep } from "../../components/in-cluster-step.ts";
import { patchConfigMapData } from "../../components/platform/kubernetes/result-writer.ts";
import { kubernetesPodApi, labelSelector } from "../../components/platform/kubernetes/pod-api.ts";
import { readStepResult } from "../../components/platform/kubernetes/deploy-step.ts";
import { runRolloutStep, type RolloutStepInputs, type RolloutStepResult } from "../../components/rollout/step.ts";
import { rolloutOrder } from "../../components/rollout-run.ts";
import { dynamicParameters } from "../../components/render/patroni.ts";
import { groupName } from "../../components/spec.ts";
import { isAlive, pollUntil, processesUnder, signal, sleep } from "../../local/processes.ts";
import { ContinuousWriter, missingWrites } from "../../local/writer.ts";
import type { PostgresNode } from "../../components/spec.ts";
import { runningCluster } from "./context.ts";

const cluster = runningCluster();
const TOKEN = "rollout-token";
const NS = "dpc";

/** The pod of a member as the stand-in API keeps it. */
interface StandInPod {
  revision: "old" | "new";
  /** Between the DELETE and the new Patroni's start. */
  deleting: boolean;
}

/** Patroni's process of a node (the state directory's path names it; not the postmaster). */
function patroniPid(node: PostgresNode): number | undefined {
  return processesUnder(process.env.DPC_TEST_STATE_DIR!).find((p) => p.command.includes("/usr/bin/patroni") && p.command.includes(`/${node.name}/`))?.pid;
}

/** Stops a member as the kubelet stops a pod (SIGTERM: Patroni shuts PostgreSQL down and exits), then starts it again. */
async function replacePod(node: PostgresNode): Promise<void> {
  const pid = patroniPid(node);
  if (pid !== undefined) {
    signal(pid, "SIGTERM");
    const gone = await pollUntil(120000, 250, async () => (isAlive(pid) ? undefined : true));
    if (!gone) throw new Error(`${node.name}: Patroni (pid ${pid}) still running 120 s after SIGTERM`);
  }
  cluster.startPatroni(node);
}

/** The Kubernetes API as the rollout step uses it, over the local groups. */
function standInApi(outdated: number[]) {
  const pods = new Map<string, StandInPod>();
  const setOf = new Map<string, number>();
  cluster.topology.groups.forEach((nodes, group) => {
    setOf.set(groupName(cluster.topology.scope, group), group);
    for (const n of nodes) pods.set(n.name, { revision: outdated.includes(group) ? "old" : "new", deleting: false });
  });
  const deletes: string[] = [];
  const replacing: Promise<void>[] = [];
  const configMap: Record<string, string> = {};
  const labels = (set: string) => ({ "app.kubernetes.io/part-of": cluster.topology.scope, "app.kubernetes.io/component": set });
  const ready = async (node: PostgresNode) =>
    request(`${cluster.restUrl(node)}/readiness`, { timeoutMs: 2000 }).then(
      (r) => r.status === 200,
      () => false,
    );
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", async () => {
      const answer = (status: number, value: unknown) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(value));
      if (req.headers.authorization !== `Bearer ${TOKEN}`) return answer(401, { message: "Unauthorized" });
      const path = req.url ?? "";
      const set = /^\/apis\/apps\/v1\/namespaces\/dpc\/statefulsets\/([a-z0-9-]+)$/.exec(path)?.[1];
      if (req.method === "GET" && set && setOf.has(set)) {
        return answer(200, { metadata: { name: set, generation: 2 }, spec: { selector: { matchLabels: labels(set) } }, status: { observedGeneration: 2, updateRevision: "new" } });
      }
      const listed = [...setOf.keys()].find((s) => path === `/api/v1/namespaces/dpc/pods?labelSelector=${encodeURIComponent(labelSelector(labels(s)))}`);
      if (req.method === "GET" && listed) {
        const nodes = cluster.topology.groups[setOf.get(listed)!];
        const items = await Promise.all(
          nodes.map(async (n) => {
            const pod = pods.get(n.name)!;
            const isReady = !pod.deleting && (await ready(n));
            return {
              metadata: { name: n.name, labels: { ...labels(listed), "controller-revision-hash": pod.revision }, ...(pod.deleting ? { deletionTimestamp: new Date().toISOString() } : {}) },
              status: { conditions: [{ type: "Ready", status: isReady ? "True" : "False" }] },
            };
          }),
        );
        return answer(200, { items });
      }
      const name = /^\/api\/v1\/namespaces\/dpc\/pods\/([a-z0-9-]+)$/.exec(path)?.[1];
      if (req.method === "DELETE" && name && pods.has(name)) {
        deletes.push(name);
        const pod = pods.get(name)!;
        pod.deleting = true;
        replacing.push(
          replacePod(cluster.node(name)).then(() => {
            pods.set(name, { revision: "new", deleting: false });
          }),
        );
        return answer(200, { metadata: { name } });
      }
      if (req.method === "PATCH" && path === "/api/v1/namespaces/dpc/configmaps/dpc-rollout-result") {
        Object.assign(configMap, JSON.parse(body).data);
        return answer(200, {});
      }
      return answer(403, { message: `${req.method} ${path} is forbidden` });
    });
  });
  return { server, pods, deletes, replacing, configMap };
}

/** The parameters every group's dynamic configuration holds now (the same in each: checked). */
async function runningParameters(): Promise<Record<string, string | number | boolean>> {
  const perGroup = await Promise.all(
    cluster.topology.groups.map(async (_, group) => {
      const leader = await cluster.leader(group);
      const config = JSON.parse((await request(`${cluster.restUrl(leader!)}/config`, { timeoutMs: 3000 })).text) as { postgresql?: { parameters?: Record<string, string | number | boolean> } };
      return config.postgresql?.parameters ?? dynamicParameters(cluster.config);
    }),
  );
  const differing = perGroup.findIndex((p) => JSON.stringify(Object.entries(p).sort()) !== JSON.stringify(Object.entries(perGroup[0]).sort()));
  if (differing >= 0) throw new Error(`group ${differing}'s dynamic configuration differs from group 0's: a rollout would change it`);
  return perGroup[0];
}

/** Timeline switches per group (each switchover adds one). */
async function timelines(): Promise<number[]> {
  return Promise.all(
    cluster.topology.groups.map(async (_, group) => {
      const leader = await cluster.leader(group);
      const body = JSON.parse((await request(`${cluster.restUrl(leader!)}/patroni`, { timeoutMs: 3000 })).text) as { timeline: number };
      return body.timeline;
    }),
  );
}

test("the rollout step replaces the outdated pods of worker group 1 and the coordinator group, replicas first, one switchover each, under writes: 0 failed, 0 lost", async (t) => {
  const outdated = [1, 0];
  for (const group of [0, 1, 2]) await cluster.waitGroupHealthy(group, 120000);
  const api = standInApi(outdated);
  await new Promise<void>((resolve) => api.server.listen(0, "127.0.0.1", resolve));
  const access = { url: `http://127.0.0.1:${(api.server.address() as AddressInfo).port}`, token: TOKEN };
  const input: RolloutStepInputs = {
    namespace: NS,
    groups: rolloutOrder(cluster.topology.groups.map((_, g) => g)).map((group) => ({
      group,
      statefulSet: groupName(cluster.topology.scope, group),
      members: cluster.topology.groups[group].map((n) => ({ name: n.name, restUrl: cluster.restUrl(n) })),
    })),
    restAuth: cluster.restApiAuth(),
    poolerAdminUrl: cluster.pgbouncerUrl("admin", "pgbouncer"),
    readWriteUrl: cluster.primaryUrl("postgres"),
    // The step runs in a process of its own: Patroni's, PgBouncer's and PostgreSQL's TLS verified with this CA.
    ca: cluster.certificates().ca,
    // What the cluster runs already (earlier tests may have changed the stack's): no parameter
    // changes, only the pods.
    parameters: await runningParameters(),
    stepTimeoutSeconds: 300,
    // PgBouncer and HAProxy addressed pod by pod, as on Kubernetes (here: one "pod" each).
    routers: { pgbouncer: { app: "pgbouncer" }, haproxy: { app: "haproxy" } },
  };
  const routerPods = async (labels: Record<string, string>) => [
    labels.app === "pgbouncer" ? { name: "pgbouncer", ip: new URL(cluster.pgbouncerUrl("admin", "pgbouncer")).hostname } : { name: "haproxy", ip: new URL(cluster.primaryUrl()).hostname },
  ];
  const dir = mkdtempSync(join(tmpdir(), "dpc-rollout-"));
  writeFileSync(join(dir, "input.json"), JSON.stringify(input), { mode: 0o600 });

  const table = "rollout_step_writes";
  const adminUrl = cluster.primaryUrl(cluster.config.database);
  await ContinuousWriter.createTable(adminUrl, table, "app");
  const bucket = await ContinuousWriter.bucketOnGroup(adminUrl, table, 1);
  const writer = new ContinuousWriter({ table, bucket, connectionString: async () => cluster.pgbouncerUrl("app") });
  const before = await timelines();
  const lines: string[] = [];
  let status: number;
  const started = Date.now();
  writer.start();
  try {
    await sleep(2000);
    status = await runInClusterStep({
      env: { DPC_STEP_RESULT_CONFIGMAP: "dpc-rollout-result", DPC_STEP_TRIGGER: "rollout-trigger", DPC_STEP_NAMESPACE: NS },
      argv: ["rollout"],
      inputDir: dir,
      // The image's rollout step, with the stand-in API instead of the pod's ServiceAccount.
      steps: { rollout: (given: RolloutStepInputs, log) => runRolloutStep(given, { pods: kubernetesPodApi(access, given.namespace), routerPods, log }) },
      report: (namespace, name, data) => patchConfigMapData(access, namespace, name, data),
      log: (line) => lines.push(line),
    });
    await sleep(2000);
  } finally {
    await Promise.allSettled(api.replacing);
    api.server.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const writes = await writer.stop();
  const seconds = (Date.now() - started) / 1000;
  t.log(`rollout step: exit ${status} after ${seconds.toFixed(1)} s; pods deleted in order: ${api.deletes.join(", ")}`);
  t.log(lines.join("\n"));
  t.log(`${writes.acknowledged.length} writes acknowledged, ${writes.errors} failed${writes.errors ? `: ${writes.errorMessages.join("; ")}` : ""}`);
  t.is(status, 0);

  const report = readStepResult("dpc-rollout", api.configMap, "rollout-trigger") as unknown as RolloutStepResult;
  const byGroup = new Map(report.groups.map((g) => [g.group, g]));
  t.deepEqual(report.groups.map((g) => g.group), [1, 2, 0], "worker groups first, the coordinator group last");
  for (const group of outdated) {
    const g = byGroup.get(group)!;
    const members = cluster.topology.groups[group].map((n) => n.name);
    t.deepEqual([...g.deleted].sort(), [...members].sort(), `group ${group}: every pod replaced once`);
    t.is(g.switchovers.length, 1, `group ${group}: one switchover`);
    // The former leader (the switchover's from) is deleted last; every member before it was a replica.
    const from = g.switchovers[0].split(" -> ")[0];
    t.is(g.deleted.at(-1), from, `group ${group}: the former leader's pod last`);
    t.deepEqual(g.restarted, [], `group ${group}: the new pods need no restart`);
  }
  t.regex(byGroup.get(0)!.switchovers[0], /PgBouncer paused/);
  t.notRegex(byGroup.get(1)!.switchovers[0], /PgBouncer paused/);
  t.deepEqual([byGroup.get(2)!.deleted, byGroup.get(2)!.switchovers], [[], []], "worker group 2's pods were up to date");
  t.deepEqual(
    api.deletes,
    [...byGroup.get(1)!.deleted, ...byGroup.get(0)!.deleted],
    "the API saw the deletes in the report's order, worker group 1's before the coordinator's",
  );
  const after = await timelines();
  t.deepEqual(after.map((tl, i) => tl - before[i]), [1, 1, 0], "one timeline switch per rolled group, none elsewhere");
  t.true([...api.pods.values()].every((p) => p.revision === "new" && !p.deleting));
  for (const group of [0, 1, 2]) await cluster.waitGroupHealthy(group, 120000);

  t.true(writes.acknowledged.length > 50, `acknowledged ${writes.acknowledged.length}`);
  t.is(writes.errors, 0, "no write failed: clients waited through each switchover");
  t.deepEqual(await missingWrites(adminUrl, table, writes.acknowledged, bucket), []);
  t.false(lines.join("\n").includes(cluster.secrets().superuser), "no password in the step's log");
});

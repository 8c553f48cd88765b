// The Kubernetes scaling step's entry point (components/in-cluster-step.ts -> components/scaling/step.ts)
// run against the real local cluster, with a stand-in for the Kubernetes API (HTTP, bearer token)
// whose StatefulSets are the local Patroni groups: scaling one to 0 stops its members' Patroni with
// SIGTERM at once (as the StatefulSet controller deletes the pods of a `Parallel` set, and the kubelet
// stops them), and its pods are the members whose Patroni or PostgreSQL still runs.
// Out (2 -> 3): the third group's nodes are started as its new StatefulSet's pods would be (no
// rebalance, nothing registered by hand); the step waits until Patroni has registered it and
// rebalances: 12 shards 4/4/4. In (3 -> 2): the step drains group 3, scales its StatefulSet to 0 and
// removes its pg_dist_node rows (Pulumi would then delete the StatefulSet): 6/6. Throughout, a writer
// inserting through PgBouncer on a shard that moves and a reader counting every loaded row: 0 failed,
// 0 lost, every row there (count and md5).
import test from "ava";
import { createServer, type Server } from "node:http";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import pg from "pg";
import { runInClusterStep } from "../../components/in-cluster-step.ts";
import { patchConfigMapData } from "../../components/platform/kubernetes/result-writer.ts";
import { labelSelector } from "../../components/platform/kubernetes/pod-api.ts";
import { kubernetesScaler } from "../../components/platform/kubernetes/scale-api.ts";
import { readStepResult } from "../../components/platform/kubernetes/deploy-step.ts";
import { runScalingStep, type ScalingStepInputs, type ScalingStepResult } from "../../components/scaling/step.ts";
import { scalingTimes } from "../../components/scaling-run.ts";
import { groupName, type PostgresNode } from "../../components/spec.ts";
import { LocalCluster } from "../../local/cluster.ts";
import { deleteGroupKeys } from "../../local/scale.ts";
import { isAlive, pollUntil, processesUnder, signal, sleep } from "../../local/processes.ts";
import { ContinuousWriter, missingWrites } from "../../local/writer.ts";
import { APP_SCHEMA } from "../../sql/migrations.ts";
import { runningCluster } from "./context.ts";
import { quietClient } from "../../components/pg-client.ts";

const cluster = runningCluster();
const { config } = cluster;
const TOKEN = "scaling-token";
const NS = "dpc";
const TABLE = `${APP_SCHEMA}.memory_entries`;
const WRITES = "scaling_step_writes";
const PREFIX = "scaling-step-";
const ROWS = 3000;

const three = (() => {
  const text = readFileSync(process.env.DPC_TEST_STACK_FILE!, "utf8");
  const changed = text.replace(/(distributed-postgres-cluster:workerGroups:\s*)"?\d+"?/, '$1"3"');
  if (changed === text) throw new Error("the stack file has no workerGroups line to change");
  const dir = mkdtempSync(join(tmpdir(), "dpc-scaling-step-"));
  writeFileSync(join(dir, "Pulumi.scale.yaml"), changed);
  return { dir, cluster: new LocalCluster({ stackFile: join(dir, "Pulumi.scale.yaml"), stateDir: cluster.paths.stateDir, log: () => undefined }) };
})();
const groupThree = () => three.cluster.topology.groups[3];

async function asSuperuser<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = quietClient({ connectionString: cluster.primaryUrl(config.database), connectionTimeoutMillis: 10000 });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

async function fingerprint(): Promise<{ rows: number; md5: string }> {
  return asSuperuser(async (c) => (await c.query(`SELECT count(*)::int AS rows, md5(string_agg(namespace || '/' || key || '/' || content, ',' ORDER BY namespace, key)) AS md5 FROM ${TABLE} WHERE namespace LIKE $1`, [`${PREFIX}%`])).rows[0]);
}

/** memory_entries' shards per worker group, ascending by group. */
async function spread(): Promise<number[]> {
  return asSuperuser(async (c) =>
    (
      await c.query(
        `SELECT pl.groupid::int AS g, count(*)::int AS n FROM pg_dist_shard s JOIN pg_dist_placement pl USING (shardid) WHERE s.logicalrelid = '${TABLE}'::regclass GROUP BY 1 ORDER BY 1`,
      )
    ).rows.map((r) => r.n),
  );
}

/** memory_entries' colocation group in the step's report. */
const shardsOf = (report: ScalingStepResult) => report.shards.find((c) => c.tables.includes(TABLE))?.shards;

/** The members of `nodes` whose Patroni or PostgreSQL still runs (the "pods" left). */
function running(nodes: PostgresNode[]): string[] {
  const processes = processesUnder(cluster.paths.stateDir);
  return nodes.filter((n) => processes.some((p) => p.command.includes(`/${n.name}/`) && /patroni|postgres/.test(p.command))).map((n) => n.name);
}

/** The Kubernetes API as the scaling step uses it: the local groups as StatefulSets. */
function standInApi() {
  const sets = new Map(three.cluster.topology.groups.map((nodes, g) => [groupName(cluster.topology.scope, g), nodes]));
  const labels = (set: string) => ({ "app.kubernetes.io/part-of": cluster.topology.scope, "app.kubernetes.io/component": set });
  const calls: string[] = [];
  const configMap: Record<string, string> = {};
  const stopping: Promise<void>[] = [];
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      const answer = (status: number, value: unknown) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(value));
      if (req.headers.authorization !== `Bearer ${TOKEN}`) return answer(401, { message: "Unauthorized" });
      const path = req.url ?? "";
      calls.push(`${req.method} ${path}`);
      const scaled = /^\/apis\/apps\/v1\/namespaces\/dpc\/statefulsets\/([a-z0-9-]+)\/scale$/.exec(path)?.[1];
      if (req.method === "PATCH" && scaled && sets.has(scaled) && JSON.parse(body).spec?.replicas === 0) {
        // Every pod at once (podManagementPolicy Parallel): SIGTERM to each member's Patroni.
        for (const node of sets.get(scaled)!) {
          const pid = processesUnder(process.env.DPC_TEST_STATE_DIR!).find((p) => p.command.includes("/usr/bin/patroni") && p.command.includes(`/${node.name}/`))?.pid;
          if (pid !== undefined) {
            signal(pid, "SIGTERM");
            stopping.push(pollUntil(120000, 250, async () => (isAlive(pid) ? undefined : true)).then(() => undefined));
          }
        }
        return answer(200, { spec: { replicas: 0 } });
      }
      const set = /^\/apis\/apps\/v1\/namespaces\/dpc\/statefulsets\/([a-z0-9-]+)$/.exec(path)?.[1];
      if (req.method === "GET" && set && sets.has(set)) return answer(200, { metadata: { name: set }, spec: { selector: { matchLabels: labels(set) } } });
      const listed = [...sets.keys()].find((s) => path === `/api/v1/namespaces/dpc/pods?labelSelector=${encodeURIComponent(labelSelector(labels(s)))}`);
      if (req.method === "GET" && listed) return answer(200, { items: running(sets.get(listed)!).map((name) => ({ metadata: { name } })) });
      if (req.method === "PATCH" && path === "/api/v1/namespaces/dpc/configmaps/dpc-scaling-result") {
        Object.assign(configMap, JSON.parse(body).data);
        return answer(200, {});
      }
      return answer(403, { message: `${req.method} ${path} is forbidden` });
    });
  });
  return { server, calls, configMap, stopping };
}

/** Runs the scaling step's entry point for `workerGroups` under a writer and a reader; returns its report and what the clients saw. */
async function scaleUnderLoad(t: import("ava").ExecutionContext, workerGroups: number, bucket: string) {
  const api = standInApi();
  await new Promise<void>((resolve) => api.server.listen(0, "127.0.0.1", resolve));
  const access = { url: `http://127.0.0.1:${(api.server.address() as AddressInfo).port}`, token: TOKEN };
  const times = scalingTimes(config);
  const input: ScalingStepInputs = {
    namespace: NS,
    coordinatorUrl: cluster.primaryUrl(config.database).split("?")[0],
    ca: cluster.certificates().ca,
    workerGroups,
    workerStatefulSetPrefix: `${cluster.topology.scope}-worker`,
    rebalanceTimeoutSeconds: 1800,
    stopTimeoutSeconds: 180,
    settleSeconds: times.settleSeconds,
  };
  const dir = mkdtempSync(join(tmpdir(), "dpc-scaling-"));
  writeFileSync(join(dir, "input.json"), JSON.stringify(input), { mode: 0o600 });
  const adminUrl = cluster.primaryUrl(config.database);
  const writer = new ContinuousWriter({ table: WRITES, bucket, connectionString: async () => cluster.pgbouncerUrl("app") });
  let reads = { ok: 0, failed: 0, errors: [] as string[], longestMs: 0 };
  let reading = true;
  const reader = (async () => {
    while (reading) {
      const started = Date.now();
      try {
        const result = await cluster.queryThroughPooler(`SELECT count(*)::int AS n FROM ${TABLE} WHERE namespace LIKE '${PREFIX}%'`, "app", config.database, 10000);
        if (result.rows[0].n !== ROWS) throw new Error(`read ${result.rows[0].n} rows, expected ${ROWS}`);
        reads.ok++;
        reads.longestMs = Math.max(reads.longestMs, Date.now() - started);
      } catch (error) {
        reads.failed++;
        if (reads.errors.length < 5) reads.errors.push((error as Error).message);
      }
      await sleep(200);
    }
  })();
  const lines: string[] = [];
  const started = Date.now();
  writer.start();
  let status: number;
  try {
    await pollUntil(60000, 200, () => (writer.acknowledgedCount > 0 ? true : undefined));
    status = await runInClusterStep({
      env: { DPC_STEP_RESULT_CONFIGMAP: "dpc-scaling-result", DPC_STEP_TRIGGER: `scaling-${workerGroups}`, DPC_STEP_NAMESPACE: NS },
      argv: ["scaling"],
      inputDir: dir,
      // The image's scaling step, with the stand-in API instead of the pod's ServiceAccount.
      steps: { scaling: (given: ScalingStepInputs, log) => runScalingStep(given, { statefulSets: kubernetesScaler(access, given.namespace), log }) },
      report: (namespace, name, data) => patchConfigMapData(access, namespace, name, data),
      log: (line) => lines.push(`+${((Date.now() - started) / 1000).toFixed(1)} s ${line}`),
    });
    await sleep(2000);
  } finally {
    reading = false;
    await reader;
    await Promise.allSettled(api.stopping);
    api.server.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const writes = await writer.stop();
  const seconds = (Date.now() - started) / 1000;
  const longestPause = writes.acknowledgedAt.slice(1).reduce((longest, at, i) => Math.max(longest, at - writes.acknowledgedAt[i]), 0);
  t.log(lines.join("\n"));
  t.log(
    `workerGroups -> ${workerGroups}: exit ${status} after ${seconds.toFixed(1)} s; ${writes.acknowledged.length} writes acknowledged, ${writes.errors} failed${writes.errors ? ` (${writes.errorMessages.join("; ")})` : ""}; ` +
      `longest pause between writes ${(longestPause / 1000).toFixed(1)} s; reads ${reads.ok} answered, ${reads.failed} failed${reads.failed ? ` (${reads.errors.join("; ")})` : ""}, longest ${(reads.longestMs / 1000).toFixed(1)} s; API calls: ${api.calls.filter((c) => !c.includes("configmaps")).join(", ") || "none"}`,
  );
  t.is(status, 0);
  const report = readStepResult("dpc-scaling", api.configMap, `scaling-${workerGroups}`) as unknown as ScalingStepResult;
  t.deepEqual(await missingWrites(adminUrl, WRITES, writes.acknowledged, bucket), [], "every acknowledged write there");
  t.is(writes.errors, 0, "no write failed");
  t.is(reads.failed, 0, "every distributed read answered");
  t.true(writes.acknowledged.length > 20);
  t.false(lines.join("\n").includes(cluster.secrets().superuser), "no password in the step's log");
  return { report, api };
}

test.before("load rows; the writer's table colocated with them", async () => {
  await asSuperuser(async (client) => {
    await client.query(`DELETE FROM ${TABLE} WHERE namespace LIKE $1`, [`${PREFIX}%`]);
    await client.query(
      `INSERT INTO ${TABLE} (namespace, key, content, embedding)
       SELECT $1 || (i % 24), 'key-' || i, md5(i::text),
              ('[' || array_to_string(ARRAY(SELECT ((i * 31 + d) % 97 + 1)::text FROM generate_series(1, ${config.embeddingDimensions}) AS d), ',') || ']')::vector
         FROM generate_series(1, ${ROWS}) AS i`,
      [PREFIX],
    );
  });
  await asSuperuser(async (client) => {
    // Colocated with memory_entries, so that its shards move with them (ContinuousWriter's columns).
    await client.query(`DROP TABLE IF EXISTS ${WRITES}`);
    await client.query(`CREATE TABLE ${WRITES} (bucket text NOT NULL DEFAULT 'w', seq integer NOT NULL, written_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (bucket, seq))`);
    await client.query(`SELECT create_distributed_table('${WRITES}', 'bucket', colocate_with => '${TABLE}')`);
    await client.query(`GRANT SELECT, INSERT ON ${WRITES} TO app`);
  });
});

test.serial("scale-out: the new group's pods started, the step waits until Patroni registered it and rebalances: 4/4/4, 0 failed, 0 lost", async (t) => {
  t.timeout(20 * 60 * 1000);
  t.deepEqual(await spread(), [6, 6]);
  const before = await fingerprint();
  t.is(before.rows, ROWS);
  // The new StatefulSet's pods, as the program's new worker group would start them (files, Patroni).
  const nodes = groupThree();
  three.cluster.issueCertificates();
  for (const node of three.cluster.render().postgres.filter((p) => nodes.some((n) => n.name === p.node.name))) node.files.forEach((f) => three.cluster.writeFile(f));
  nodes.forEach((n) => three.cluster.startPatroni(n));
  await three.cluster.waitGroupHealthy(3, 180000);
  // A bucket on a shard of group 1: 4 of group 1's 6 shards stay, so pick one and report whether it moved.
  const bucket = await ContinuousWriter.bucketOnGroup(cluster.primaryUrl(config.database), WRITES, 1);
  const { report, api } = await scaleUnderLoad(t, 3, bucket);
  t.like(report, { direction: "out", workerGroups: 3, registered: [1, 2, 3], drained: [], stopped: [], removed: [] });
  t.true(report.moves > 0, "shards moved");
  t.deepEqual(shardsOf(report), { "1": 4, "2": 4, "3": 4 });
  t.deepEqual(await spread(), [4, 4, 4]);
  t.deepEqual(await fingerprint(), before, "every loaded row there, unchanged");
  t.deepEqual(api.calls.filter((c) => !c.includes("configmaps")), [], "scale-out calls nothing of the Kubernetes API");
  t.log(`scale-out: ${report.moves} shard-group moves, step ${report.seconds} s`);
});

test.serial("scale-in: the step drains group 3, scales its StatefulSet to 0, then removes its rows: 6/6, 0 failed, 0 lost", async (t) => {
  t.timeout(20 * 60 * 1000);
  const before = await fingerprint();
  // A writer on a shard of the going group: it must move.
  const bucket = await ContinuousWriter.bucketOnGroup(cluster.primaryUrl(config.database), WRITES, 3);
  const { report, api } = await scaleUnderLoad(t, 2, bucket);
  t.like(report, { direction: "in", workerGroups: 2, registered: [1, 2, 3], drained: [3], stopped: [`${cluster.topology.scope}-worker3`] });
  t.deepEqual(shardsOf(report), { "1": 6, "2": 6 });
  t.true(report.removed.length >= 1 && report.removed.every((r) => r.startsWith("3 ")), report.removed.join(", "));
  t.deepEqual(await spread(), [6, 6]);
  t.deepEqual(await fingerprint(), before, "every loaded row there, unchanged");
  const scale = api.calls.findIndex((c) => c.startsWith("PATCH") && c.endsWith("/scale"));
  t.true(scale >= 0, "the going StatefulSet was scaled to 0");
  t.deepEqual(running(groupThree()), [], "group 3 stopped");
  // The coordinator's Patroni does not register it again.
  await sleep(config.patroniLoopWait * 3000);
  t.is(await asSuperuser(async (c) => (await c.query("SELECT count(*)::int AS n FROM pg_dist_node WHERE groupid = 3")).rows[0].n), 0, "no pg_dist_node row of group 3");
  t.log(`scale-in: ${report.moves} shard-group moves, step ${report.seconds} s`);
});

test.after.always("group 3 gone as the local runner leaves a removed group (processes, etcd keys, directories); the tables and the stack copy removed", async () => {
  for (const node of groupThree()) {
    for (const p of processesUnder(cluster.paths.stateDir).filter((p) => p.command.includes(`/${node.name}/`))) signal(p.pid, "SIGKILL");
  }
  await deleteGroupKeys(cluster, 3).catch(() => undefined);
  for (const node of groupThree()) rmSync(cluster.paths.nodeDir(node.name), { recursive: true, force: true });
  await asSuperuser(async (client) => {
    await client.query(`DROP TABLE IF EXISTS ${WRITES}`);
    await client.query(`DELETE FROM ${TABLE} WHERE namespace LIKE $1`, [`${PREFIX}%`]);
  }).catch(() => undefined);
  rmSync(three.dir, { recursive: true, force: true });
});

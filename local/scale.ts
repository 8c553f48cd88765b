// `npm run local -- up` on a running cluster whose stack file changed `workerGroups`: the same
// scaling logic as `pulumi up` (components/scaling/citus-workers.ts), with this runner's processes.
// Out: start the new groups' Patroni, wait until healthy and registered, rebalance.
// In:  drain the going groups (refused, nothing stopped, if that fails), stop their Patroni, remove
//      their pg_dist_node rows and DCS keys, then their processes and directories.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { request } from "../components/https.ts";
import { PORTS } from "../components/render/index.ts";
import { groupName, planTopology, type PostgresNode, type Topology } from "../components/spec.ts";
import { drainWorkerGroups, removeWorkerGroups, scaleOut, type DrainResult, type RemoveResult, type ScaleOutResult } from "../components/scaling/citus-workers.ts";
import { LocalClusterError, NEW_GROUP_HEALTHY_MS, type LocalCluster, type StateIdentity } from "./cluster.ts";
import { postgresAddress } from "./layout.ts";
import { startPostgresExporter, writeMonitoringFiles } from "./monitoring.ts";
import { isAlive, pollUntil, processesUnder, signal, sleep } from "./processes.ts";

/** How long a rebalance or drain may take before it is cancelled and `up` fails. */
export const SCALING_TIMEOUT_MS = 30 * 60 * 1000;

export interface WorkerGroupsChange {
  from: number;
  to: number;
}

export interface LocalScaleResult extends WorkerGroupsChange {
  seconds: number;
  scaleOut?: ScaleOutResult;
  drain?: DrainResult;
  removed?: RemoveResult;
  /** Directories deleted (the going nodes'; their shards had all been moved off). */
  deletedDirs: string[];
}

/**
 * The change of `workerGroups` between what a state directory was made for (`found`) and the stack
 * now (`wanted`), when that is the only difference: the same scope, major, database, coordinator and
 * kept groups, worker groups added or removed at the end. undefined when nothing differs or
 * something else does (the normal identity check then refuses or passes).
 */
export function workerGroupsChange(found: StateIdentity, wanted: StateIdentity): WorkerGroupsChange | undefined {
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  if (!same({ ...found, groups: [] }, { ...wanted, groups: [] })) return undefined;
  const from = found.groups.length - 1;
  const to = wanted.groups.length - 1;
  if (from === to || to < 1) return undefined;
  const kept = Math.min(from, to) + 1;
  return same(found.groups.slice(0, kept), wanted.groups.slice(0, kept)) ? { from, to } : undefined;
}

/** The pending `workerGroups` change of a running cluster's state directory, if any. */
export function pendingWorkerGroupsChange(cluster: LocalCluster): WorkerGroupsChange | undefined {
  if (!existsSync(cluster.paths.identityFile)) return undefined;
  const found = JSON.parse(readFileSync(cluster.paths.identityFile, "utf8")) as StateIdentity;
  return workerGroupsChange(found, cluster.identity());
}

/** The topology the state directory was made for (`from` worker groups), with its addresses. */
function previousTopology(cluster: LocalCluster, from: number): Topology {
  return planTopology({ ...cluster.config, workerGroups: from });
}

/**
 * Applies a `workerGroups` change to the running cluster `cluster` (built from the new stack file).
 * @throws LocalClusterError when a new group does not become healthy, the rebalance fails, or the
 *   drain fails (then nothing is stopped or removed and the state directory keeps its old record).
 */
export async function scaleLocalCluster(cluster: LocalCluster, change: WorkerGroupsChange, log: (line: string) => void = console.log): Promise<LocalScaleResult> {
  const started = Date.now();
  const url = cluster.primaryUrl(cluster.config.database);
  const options = { timeoutMs: SCALING_TIMEOUT_MS, log };
  const result: LocalScaleResult = { ...change, seconds: 0, deletedDirs: [] };
  try {
    if (change.to > change.from) {
      const added = cluster.topology.groups.slice(change.from + 1);
      const nodes = added.flat();
      cluster.issueCertificates();
      for (const node of cluster.render().postgres.filter((p) => nodes.some((n) => n.name === p.node.name))) node.files.forEach((f) => cluster.writeFile(f));
      for (const node of nodes) {
        const { ok, output } = await cluster.validatePatroniConfig(cluster.layout.postgres(node).configFile);
        if (!ok) throw new LocalClusterError(`patroni --validate-config rejected ${cluster.layout.postgres(node).configFile}:\n${output}`);
      }
      log(`adding worker group(s) ${range(change.from + 1, change.to)}: starting Patroni on ${nodes.map((n) => n.name).join(", ")}`);
      nodes.forEach((n) => cluster.startPatroni(n));
      for (let group = change.from + 1; group <= change.to; group++) {
        await cluster.waitGroupHealthy(group, NEW_GROUP_HEALTHY_MS, { failWhenExited: true });
        log(`  ${groupName(cluster.topology.scope, group)}: healthy`);
      }
      result.scaleOut = await scaleOut(url, change.to, options);
      await updateMonitoring(cluster, nodes, []);
    } else {
      const old = previousTopology(cluster, change.from);
      const going = old.groups.slice(change.to + 1).flat();
      result.drain = await drainWorkerGroups(url, change.to, options);
      log(`removing worker group(s) ${range(change.to + 1, change.from)}: stopping Patroni on ${going.map((n) => n.name).join(", ")}`);
      await stopNodes(cluster, old, going, log);
      // The DCS keys go before the rows: the coordinator's Patroni re-adds a group it still sees a
      // leader for. Then give it two loops to read the DCS again.
      for (let group = change.to + 1; group <= change.from; group++) await deleteGroupKeys(cluster, group);
      await sleep(cluster.config.patroniLoopWait * 2000);
      result.removed = await removeWorkerGroups(url, change.to, options);
      await updateMonitoring(cluster, [], going.map((node) => ({ node, address: postgresAddress(old, node) })));
      // Their shards were all moved off (removeWorkerGroups checked): the data is not needed again, and a
      // later scale-out to the same group number must bootstrap afresh.
      // Asynchronously: a data directory's thousands of files take seconds to delete on a busy disk,
      // and this runs beside the clients of `npm run local` and of the tests.
      for (const node of going) {
        const dir = cluster.paths.nodeDir(node.name);
        await rm(dir, { recursive: true, force: true });
        result.deletedDirs.push(dir);
      }
    }
  } catch (error) {
    throw error instanceof LocalClusterError ? error : new LocalClusterError((error as Error).message, { cause: error });
  }
  writeFileSync(cluster.paths.identityFile, JSON.stringify(cluster.identity(), null, 2) + "\n", { mode: 0o644 });
  result.seconds = (Date.now() - started) / 1000;
  return result;
}

function range(first: number, last: number): string {
  return Array.from({ length: last - first + 1 }, (_, i) => first + i).join(", ");
}

/** The PID of a node's Patroni, or of the reaper running it (either passes SIGTERM on to Patroni). */
function patroniPid(cluster: LocalCluster, node: PostgresNode): number | undefined {
  return cluster.patroniPids(node)[0];
}

function postmasterPid(cluster: LocalCluster, node: PostgresNode): number | undefined {
  const file = join(cluster.layout.postgres(node).dataDir, "postmaster.pid");
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, "utf8").split("\n")[0]);
  return pid > 0 && isAlive(pid) ? pid : undefined;
}

/**
 * Stops the nodes' Patroni and PostgreSQL. Each group is paused first (Patroni's maintenance mode,
 * its own `/config` key): a paused Patroni stops without stopping PostgreSQL and without telling
 * the coordinator "before_demote", which would open a transaction on the group's pg_dist_node row
 * waiting for a new primary that never comes. PostgreSQL is then stopped directly (fast shutdown).
 * If the pause is not confirmed, Patroni stops it (replicas first) and removeWorkerGroups ends that
 * transaction.
 */
async function stopNodes(cluster: LocalCluster, topology: Topology, nodes: PostgresNode[], log: (line: string) => void): Promise<void> {
  const byGroup = new Map<number, PostgresNode[]>();
  for (const node of nodes) byGroup.set(node.group, [...(byGroup.get(node.group) ?? []), node]);
  const rest = (node: PostgresNode) => `https://${postgresAddress(topology, node)}:${PORTS.patroniRest}`;
  const auth = { authorization: `Basic ${Buffer.from(cluster.restApiAuth()).toString("base64")}` };
  for (const [group, members] of byGroup) {
    const paused = await (async () => {
      try {
        const answer = await request(`${rest(members[0])}/config`, {
          method: "PATCH",
          headers: { ...auth, "content-type": "application/json" },
          body: JSON.stringify({ pause: true }),
          timeoutMs: 5000,
        });
        if (answer.status !== 200) return false;
        const everyMemberPaused = async () => {
          const states = await Promise.all(
            members.map((m) => request(`${rest(m)}/patroni`, { timeoutMs: 1500 }).then((r) => JSON.parse(r.text) as { pause?: boolean }, () => ({ pause: false }))),
          );
          return states.every((state) => state.pause === true) ? true : undefined;
        };
        return (await pollUntil(30000, 250, everyMemberPaused)) === true;
      } catch {
        return false;
      }
    })();
    log(`  ${groupName(topology.scope, group)}: ${paused ? "paused; stopping Patroni, then PostgreSQL" : "pause not confirmed; stopping Patroni (replicas first)"}`);
    const leader = await leaderName(topology, group);
    const ordered = [...members.filter((m) => m.name !== leader), ...members.filter((m) => m.name === leader)];
    for (const node of ordered) {
      const pid = patroniPid(cluster, node);
      if (pid !== undefined) signal(pid, "SIGTERM");
      const stopped = await pollUntil(60000, 200, () => (patroniPid(cluster, node) === undefined ? true : undefined));
      if (!stopped) for (const p of cluster.patroniPids(node)) signal(p, "SIGKILL");
      // Paused, Patroni leaves PostgreSQL running: SIGINT is PostgreSQL's fast shutdown.
      const postmaster = postmasterPid(cluster, node);
      if (postmaster !== undefined) signal(postmaster, "SIGINT");
      const down = await pollUntil(60000, 200, () => (postmasterPid(cluster, node) === undefined ? true : undefined));
      if (!down) {
        const p = postmasterPid(cluster, node);
        if (p !== undefined) signal(p, "SIGKILL");
        await sleep(1000);
      }
    }
  }
}

/** The name of a group's leader, asked from the group's own members (they are not in the new topology). */
async function leaderName(topology: Topology, group: number): Promise<string | undefined> {
  for (const node of topology.groups[group]) {
    try {
      const url = `https://${postgresAddress(topology, node)}:${PORTS.patroniRest}/cluster`;
      const body = JSON.parse((await request(url, { timeoutMs: 1500 })).text) as { members?: { name: string; role: string }[] };
      const leader = body.members?.find((m) => m.role === "leader");
      if (leader) return leader.name;
    } catch {
      // ask the next member
    }
  }
  return undefined;
}

/**
 * Deletes a removed group's keys in etcd (`/service/<scope>/<group>/`: its initialize key, config,
 * history): with them, new nodes of a later group of that number would wait for a leader that
 * never comes instead of bootstrapping. Through etcd's v3 JSON gateway.
 */
export async function deleteGroupKeys(cluster: LocalCluster, group: number): Promise<void> {
  const prefix = `/service/${cluster.topology.scope}/${group}/`;
  // The range end of a prefix: the prefix with its last byte incremented ("/" -> "0").
  const end = prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  let lastError = "";
  for (const member of cluster.topology.etcd) {
    try {
      const answer = await request(`${cluster.etcdUrl(member)}/v3/kv/deleterange`, {
        method: "POST",
        body: JSON.stringify({ key: b64(prefix), range_end: b64(end) }),
        timeoutMs: 3000,
      });
      if (answer.status === 200) return;
      lastError = `HTTP ${answer.status}`;
    } catch (error) {
      lastError = (error as Error).message;
    }
  }
  throw new LocalClusterError(`could not delete the etcd keys under ${prefix}: ${lastError}`);
}

/**
 * Monitoring follows the nodes: exporters started for added nodes and stopped for removed ones,
 * Prometheus' config rewritten for the new topology and reloaded (SIGHUP). Skipped when Prometheus
 * does not run.
 */
async function updateMonitoring(cluster: LocalCluster, added: PostgresNode[], removed: { node: PostgresNode; address: string }[]): Promise<void> {
  const processes = processesUnder(cluster.paths.stateDir);
  const prometheus = processes.find((p) => p.command.startsWith("/usr/bin/prometheus "));
  for (const { address } of removed) {
    const exporter = processes.find((p) => p.command.includes("prometheus-postgres-exporter") && p.command.includes(`--web.listen-address=${address}:`));
    if (exporter) signal(exporter.pid, "SIGTERM");
  }
  if (!prometheus) return;
  writeMonitoringFiles(cluster);
  for (const node of added) startPostgresExporter(cluster, node);
  signal(prometheus.pid, "SIGHUP");
}

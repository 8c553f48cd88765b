// Planned switchovers under writes, as clients see them through PgBouncer: a pause, no failed
// transaction, no write on a read-only node, HAProxy routing to one primary when clients flow, and
// monitoring that scraped every node without error throughout (read back from the local Prometheus).
import test from "ava";
import { plannedSwitchover } from "../../local/switchover.ts";
import { ContinuousWriter, missingWrites } from "../../local/writer.ts";
import { prometheusUrl } from "../../local/monitoring.ts";
import { pollUntil, sleep } from "../../local/processes.ts";
import { runningCluster } from "./context.ts";

const cluster = runningCluster();

/** The longest gap between consecutive acknowledged writes within [from, to] (ms since epoch), in s. */
function longestPause(acknowledgedAt: number[], from: number, to: number): number {
  const inside = acknowledgedAt.filter((t) => t >= from - 1000 && t <= to + 1000);
  let longest = 0;
  for (let i = 1; i < inside.length; i++) longest = Math.max(longest, inside[i] - inside[i - 1]);
  return longest / 1000;
}

interface Series {
  metric: Record<string, string>;
  values: [number, string][];
}

async function queryRange(expr: string, from: number, to: number): Promise<Series[]> {
  const url = `${prometheusUrl()}/api/v1/query_range?query=${encodeURIComponent(expr)}&start=${from / 1000}&end=${to / 1000}&step=1`;
  const body = (await (await fetch(url)).json()) as { status: string; error?: string; data?: { result: Series[] } };
  if (body.status !== "success") throw new Error(`Prometheus: ${expr}: ${body.error}`);
  return body.data!.result;
}

/**
 * postgres_exporter's view of every node over [from, to] (ms since epoch), one point a second:
 * per member, the seconds where a scrape failed while PostgreSQL answered (must be none: such an
 * error is a query the exporter runs that fails on this node's role) and those where it did not
 * answer (pg_up 0: a demoted primary restarts as a replica, which monitoring must report).
 */
async function exporterWindow(from: number, to: number): Promise<Map<string, { errorsWhileUp: number; down: number; upAtEnd: boolean }>> {
  const [errors, up] = await Promise.all([queryRange("pg_exporter_last_scrape_error", from, to), queryRange("pg_up", from, to)]);
  const byMember = new Map<string, { errorsWhileUp: number; down: number; upAtEnd: boolean }>();
  for (const series of up) {
    const member = series.metric.member;
    const errorAt = new Map((errors.find((e) => e.metric.member === member)?.values ?? []).map(([t, v]) => [t, v]));
    const upValues = series.values;
    byMember.set(member, {
      errorsWhileUp: upValues.filter(([t, v]) => v === "1" && errorAt.get(t) === "1").length,
      down: upValues.filter(([, v]) => v !== "1").length,
      upAtEnd: upValues.at(-1)?.[1] === "1",
    });
  }
  return byMember;
}

for (const group of [0, 1]) {
  const what = group === 0 ? "the coordinator (PgBouncer paused around it)" : "worker group 1 (held by Patroni through Citus)";
  test.serial(`planned switchover of ${what} under writes: a pause, 0 failed transactions, 0 lost`, async (t) => {
    const table = `switchover_writes_g${group}`;
    const adminUrl = cluster.primaryUrl(cluster.config.database);
    await ContinuousWriter.createTable(adminUrl, table, "app");
    const bucket = await ContinuousWriter.bucketOnGroup(adminUrl, table, group === 0 ? 1 : group);
    const writer = new ContinuousWriter({ table, bucket, connectionString: async () => cluster.pgbouncerUrl("app") });
    writer.start();
    await sleep(2000);
    const started = Date.now();
    const result = await plannedSwitchover(cluster, group);
    const finished = Date.now();
    await sleep(2000);
    const writes = await writer.stop();
    const pause = longestPause(writes.acknowledgedAt, started, finished);
    t.log(
      `${result.from} -> ${result.to}: switchover took ${result.seconds.toFixed(2)} s; clients paused at most ${pause.toFixed(2)} s; ` +
        `${writes.acknowledged.length} writes acknowledged, ${writes.errors} failed${writes.errors ? `: ${writes.errorMessages.join("; ")}` : ""}`,
    );
    t.not(result.to, result.from);
    t.is(writes.errors, 0, "no transaction failed: clients waited instead");
    t.deepEqual(await missingWrites(adminUrl, table, writes.acknowledged, bucket), []);
    if (group === 0) t.is(result.maxRoutableWhileOpen, 1, "HAProxy routed to the new primary alone when PgBouncer resumed");
    t.log(`where the pause went (s after PAUSE): ${JSON.stringify(result.timeline)}`);
    await cluster.waitGroupHealthy(group, 60000);

    // Monitoring: from before the switchover until every node has been scraped since the group is
    // healthy again (Prometheus scrapes every 2 s locally).
    const healthyAt = Date.now();
    const window = await pollUntil(30000, 1000, async () => {
      const view = await exporterWindow(started - 4000, Date.now());
      return view.size === cluster.nodes.length && [...view.values()].every((m) => m.upAtEnd) && Date.now() > healthyAt + 6000 ? view : undefined;
    });
    t.truthy(window, "every node scraped, pg_up 1, after the switchover");
    // The coordinator primary alone runs citus_table, which asks every worker for its shards' sizes
    // and fails while one is unreachable (a worker switching over) or pg_dist_node still names an
    // old address: a known gap (see the README), logged, not asserted.
    const coordinatorPrimaries = new Set([(await cluster.leader(0))?.name, ...(group === 0 ? [result.from, result.to] : [])]);
    for (const [member, view] of window ?? []) {
      if (coordinatorPrimaries.has(member)) {
        t.log(`${member} (coordinator primary in the window): ${view.errorsWhileUp} s with a scrape error while it answered`);
        continue;
      }
      t.is(view.errorsWhileUp, 0, `${member}: no scrape error while PostgreSQL answered`);
      if (view.down > 0) t.log(`${member}: PostgreSQL not answering the exporter for ${view.down} s of the window (restarting as a replica)`);
    }
  });
}

// Planned switchovers under writes, as clients see them through PgBouncer: a pause, no failed
// transaction, no write on a read-only node, and HAProxy routing to one primary when clients flow.
import test from "ava";
import { plannedSwitchover } from "../../local/switchover.ts";
import { ContinuousWriter, missingWrites } from "../../local/writer.ts";
import { sleep } from "../../local/processes.ts";
import { runningCluster } from "./context.ts";

const cluster = runningCluster();

/** The longest gap between consecutive acknowledged writes within [from, to] (ms since epoch), in s. */
function longestPause(acknowledgedAt: number[], from: number, to: number): number {
  const inside = acknowledgedAt.filter((t) => t >= from - 1000 && t <= to + 1000);
  let longest = 0;
  for (let i = 1; i < inside.length; i++) longest = Math.max(longest, inside[i] - inside[i - 1]);
  return longest / 1000;
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
    await cluster.waitGroupHealthy(group, 60000);
  });
}

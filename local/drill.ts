// The failover drill: on a fresh cluster of its own, measures cold bootstrap to healthy, failover of
// the coordinator primary and of worker group 1's primary under writes (median of 3 each) and a
// planned switchover of the coordinator, then tears the cluster down.
import { loadavg } from "node:os";
import { LocalCluster, type LocalOptions } from "./cluster.ts";
import { failoverUnderWrites, type FailoverResult } from "./failover.ts";
import { plannedSwitchover, type SwitchoverResult } from "./switchover.ts";

export interface DrillReport {
  postgresMajor: number;
  patroni: { ttl: number; loopWait: number; retryTimeout: number; synchronousMode: string };
  coldBootstrapSeconds: number;
  failoverSecondsToFirstWrite: number[];
  medianFailoverSeconds: number;
  acknowledgedWrites: number;
  lostWrites: number;
  runs: FailoverResult[];
  /** Worker group 1's primary killed: seconds to the first write of a row on that group, each round. */
  workerFailoverSecondsToFirstWrite: number[];
  medianWorkerFailoverSeconds: number;
  workerRuns: FailoverResult[];
  /** A planned switchover of the coordinator after the failovers, PgBouncer paused around it. */
  switchover: SwitchoverResult;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

export async function runDrill(options: LocalOptions, rounds = 3): Promise<DrillReport> {
  const log = options.log ?? (() => undefined);
  const cluster = new LocalCluster(options);
  await cluster.down(true);
  let succeeded = false;
  try {
    const { seconds } = await cluster.up();
    log(`cold bootstrap to healthy: ${seconds.toFixed(1)} s`);
    const failovers = async (group: number): Promise<FailoverResult[]> => {
      const results: FailoverResult[] = [];
      for (let round = 1; round <= rounds; round++) {
        const run = await failoverUnderWrites(cluster, group);
        const { leaderKeyExpired, newLeaderElected, promoted, routed, metadataSynced } = run.timeline;
        const route = group === 0 ? "routed by HAProxy" : "pg_dist_node updated";
        log(
          `failover of group ${group} ${round}/${rounds}: ${run.oldLeader} -> ${run.newLeader}: leader key expired ${leaderKeyExpired} s, new leader ${newLeaderElected} s, ` +
            `promoted ${promoted} s, ${route} ${routed} s, first write ${run.secondsToFirstWrite.toFixed(2)} s after the kill` +
            (group > 0 ? `, Citus metadata synced (DDL possible) ${metadataSynced} s` : "") +
            `; ${run.lostWrites.length} lost of ${run.acknowledgedWrites}` +
            ` (load average ${loadavg()[0].toFixed(1)})`,
        );
        results.push(run);
      }
      return results;
    };
    const runs = await failovers(0);
    const workerRuns = await failovers(1);
    const switchover = await plannedSwitchover(cluster, 0);
    const t = switchover.timeline;
    log(
      `planned switchover ${switchover.from} -> ${switchover.to}: clients paused ${switchover.seconds.toFixed(2)} s (PAUSE done ${t.paused} s, old primary stopped ${t.oldPrimaryStopped} s, old leader released ${t.oldLeaderReleased} s, ` +
        `new leader ${t.newLeaderElected} s, promoted ${t.promoted} s, HAProxy: old DOWN ${t.oldPrimaryDown} s, new UP ${t.newPrimaryUp} s)`,
    );
    const times = runs.map((r) => r.secondsToFirstWrite);
    const workerTimes = workerRuns.map((r) => r.secondsToFirstWrite);
    succeeded = true;
    return {
      postgresMajor: cluster.config.postgresMajor,
      patroni: {
        ttl: cluster.config.patroniTtl,
        loopWait: cluster.config.patroniLoopWait,
        retryTimeout: cluster.config.patroniRetryTimeout,
        synchronousMode: cluster.config.synchronousMode,
      },
      coldBootstrapSeconds: Number(seconds.toFixed(2)),
      failoverSecondsToFirstWrite: times.map((t) => Number(t.toFixed(2))),
      medianFailoverSeconds: Number(median(times).toFixed(2)),
      acknowledgedWrites: [...runs, ...workerRuns].reduce((sum, r) => sum + r.acknowledgedWrites, 0),
      lostWrites: [...runs, ...workerRuns].reduce((sum, r) => sum + r.lostWrites.length, 0),
      runs,
      workerFailoverSecondsToFirstWrite: workerTimes.map((t) => Number(t.toFixed(2))),
      medianWorkerFailoverSeconds: Number(median(workerTimes).toFixed(2)),
      workerRuns,
      switchover,
    };
  } finally {
    // Keep the logs of a failed drill for a person to read.
    await cluster.down(succeeded);
    if (!succeeded) log(`drill failed: logs kept in ${cluster.paths.logDir}`);
  }
}

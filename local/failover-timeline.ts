// Where the time of a failover goes, sampled every 100 ms from the kill on: the leader key expiring
// in etcd (seen through the surviving members' Patroni), the new leader taking it, its PostgreSQL
// leaving recovery, and the route to it (HAProxy for the coordinator, pg_dist_node for a worker);
// for a worker, also when Citus takes DDL again (its metadata synced to every worker).
import type { PostgresNode } from "../components/spec.ts";
import type { LocalCluster } from "./cluster.ts";
import { clusterMembers, leaderOf } from "./patroni-api.ts";
import { sleep } from "./processes.ts";
import { quietClient } from "../components/pg-client.ts";
import { unsyncedMetadataNodes } from "../components/citus-metadata.ts";

/** Seconds from the kill to each event; null when it was not seen before the sampler stopped. */
export interface FailoverTimeline {
  /** No member holds the leader key any more (its TTL ran out). */
  leaderKeyExpired: number | null;
  /** Another member holds the leader key. */
  newLeaderElected: number | null;
  /** The new leader's PostgreSQL is out of recovery (accepts writes). */
  promoted: number | null;
  /** Coordinator: HAProxy lists the new leader UP in the read-write backend. Worker: pg_dist_node names it. */
  routed: number | null;
  /**
   * Worker: Citus has synced its metadata to every metadata worker again (Patroni's
   * citus_update_node marked them out of sync, and Citus refuses DDL until then). Coordinator: null.
   */
  metadataSynced: number | null;
}

/** Whether the PostgreSQL at `url` answers within `timeoutMs` and is out of recovery (a primary). */
export async function outOfRecovery(url: string, timeoutMs = 500): Promise<boolean> {
  const client = quietClient({ connectionString: url, connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs });
  try {
    await client.connect();
    return (await client.query("SELECT NOT pg_is_in_recovery() AS primary")).rows[0].primary === true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Samples a group's failover from `killedAt` (ms since epoch) until `stop()` is called.
 * `oldLeader` is the member that was killed.
 */
export class FailoverSampler {
  readonly timeline: FailoverTimeline = { leaderKeyExpired: null, newLeaderElected: null, promoted: null, routed: null, metadataSynced: null };
  private stopped = false;
  private readonly running: Promise<void>;

  constructor(
    private readonly cluster: LocalCluster,
    private readonly group: number,
    private readonly oldLeader: PostgresNode,
    private readonly killedAt: number,
  ) {
    this.running = this.loop();
  }

  async stop(): Promise<FailoverTimeline> {
    this.stopped = true;
    await this.running;
    return this.timeline;
  }

  private mark(event: keyof FailoverTimeline): void {
    if (this.timeline[event] === null) this.timeline[event] = Number(((Date.now() - this.killedAt) / 1000).toFixed(2));
  }

  private async loop(): Promise<void> {
    const survivors = this.cluster.topology.groups[this.group].filter((n) => n.name !== this.oldLeader.name);
    let newLeader: PostgresNode | undefined;
    while (!this.stopped && (this.timeline.routed === null || (this.group > 0 && this.timeline.metadataSynced === null))) {
      const leader = leaderOf(await clusterMembers(survivors.map((n) => this.cluster.restUrl(n))));
      if (leader?.name !== this.oldLeader.name) this.mark("leaderKeyExpired");
      if (leader && leader.name !== this.oldLeader.name) {
        this.mark("newLeaderElected");
        newLeader = this.cluster.node(leader.name);
      }
      if (newLeader && this.timeline.promoted === null && (await outOfRecovery(this.cluster.nodeUrl(newLeader)))) this.mark("promoted");
      if (newLeader && this.timeline.promoted !== null && this.timeline.routed === null && (await this.routedTo(newLeader))) this.mark("routed");
      if (this.group > 0 && this.timeline.routed !== null && (await this.metadataSynced())) this.mark("metadataSynced");
      await sleep(100);
    }
  }

  /** Whether every metadata worker is synced (unsyncedMetadataNodes is empty); false on errors. */
  private async metadataSynced(): Promise<boolean> {
    return unsyncedMetadataNodes(this.cluster.primaryUrl(this.cluster.config.database)).then((nodes) => nodes.length === 0, () => false);
  }

  private async routedTo(node: PostgresNode): Promise<boolean> {
    if (this.group === 0) return (await this.cluster.haproxyServerStates("coordinator_primary")).get(node.name)?.startsWith("UP") ?? false;
    const client = quietClient({ connectionString: this.cluster.primaryUrl(this.cluster.config.database), connectionTimeoutMillis: 500, query_timeout: 1000 });
    try {
      await client.connect();
      const result = await client.query("SELECT nodename FROM pg_dist_node WHERE groupid = $1 AND noderole = 'primary' AND isactive", [this.group]);
      return result.rows[0]?.nodename === this.cluster.addressing.postgres(node).connect;
    } catch {
      return false;
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}

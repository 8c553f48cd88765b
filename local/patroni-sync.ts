// A group's /sync key in quorum mode, and whether a member may take over as leader with a given
// set of members alive: the vote count of Patroni 4.0.7's leader race (ha.py _is_healthiest_node,
// dcs SyncState.members), so that a test can say in advance what Patroni must do.

/** The `/service/<scope>/<group>/sync` key: the last leader, the voters and the quorum they need. */
export interface SyncKey {
  leader: string | null;
  /** Voters, as Patroni stores them (`sync_standby`: comma-separated names, or null). */
  voters: string[];
  quorum: number;
}

/** Parses the key's JSON value; undefined for no key (synchronous replication not active). */
export function parseSyncKey(value: string | undefined): SyncKey | undefined {
  if (value === undefined) return undefined;
  const raw = JSON.parse(value) as { leader?: string | null; sync_standby?: string | null; quorum?: number };
  return {
    leader: raw.leader ?? null,
    voters: (raw.sync_standby ?? "").split(",").filter((v) => v.length > 0),
    quorum: raw.quorum ?? 0,
  };
}

/** The key as one short line for logs, e.g. `leader B, quorum 0 of [C]`. */
export function describeSyncKey(sync: SyncKey | undefined): string {
  return sync ? `leader ${sync.leader ?? "-"}, quorum ${sync.quorum} of [${sync.voters.join(",")}]` : "(no key)";
}

/**
 * Whether `member`, a replica not behind any live member, passes Patroni's quorum check in the leader
 * race when only `alive` (other members, Patroni and PostgreSQL up) answer. Patroni 4.0.7, ha.py
 * `_is_healthiest_node`: the voting set is the key's leader plus its voters (`SyncState.members`); the
 * count starts at 0 for a member of that set and at -1 otherwise, each live member of the set adds
 * one, and the member may lead with at least `quorum` votes, or as the key's own leader. With no key
 * quorum mode is not active and the check passes.
 */
export function mayTakeOver(sync: SyncKey | undefined, member: string, alive: readonly string[] = []): boolean {
  if (!sync || sync.leader === null) return true;
  const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
  if (same(sync.leader, member)) return true;
  const votingSet = [sync.leader, ...sync.voters];
  const votes = (votingSet.some((v) => same(v, member)) ? 0 : -1) + alive.filter((a) => !same(a, member) && votingSet.some((v) => same(v, a))).length;
  return votes >= sync.quorum;
}

// The /sync states a three-member quorum group (synchronous_node_count 2) passes through after a
// failover from A to B with A left down, as Patroni 4.0.7's QuorumStateResolver produces them (run
// against patroni/quorum.py itself, see the README "Quorum commit"), and whether the last member C
// may then take over alone once B dies too.
import test from "ava";
import { describeSyncKey, mayTakeOver, parseSyncKey } from "../../local/patroni-sync.ts";

const key = (leader: string, quorum: number, voters: string | null) => parseSyncKey(JSON.stringify({ leader, quorum, sync_standby: voters }));

test("the key is parsed as Patroni writes it", (t) => {
  t.deepEqual(parseSyncKey('{"leader":"B","quorum":0,"sync_standby":"A,C"}'), { leader: "B", quorum: 0, voters: ["A", "C"] });
  t.deepEqual(parseSyncKey('{"leader":"B","quorum":0,"sync_standby":null}'), { leader: "B", quorum: 0, voters: [] });
  t.is(parseSyncKey(undefined), undefined);
  t.is(describeSyncKey(key("B", 1, "C")), "leader B, quorum 1 of [C]");
});

test("states in which the last member may take over alone", (t) => {
  // Steady state before the first failure, still there when B is killed before its first resolver run.
  t.true(mayTakeOver(key("A", 0, "B,C"), "C"));
  // B's first resolver run (loop_wait after the promotion), C streaming from B, or not yet.
  t.true(mayTakeOver(key("B", 0, "C"), "C"));
  t.true(mayTakeOver(key("B", 0, "A,C"), "C"));
  // No key: quorum mode not active.
  t.true(mayTakeOver(undefined, "C"));
});

test("states in which the last member waits, and who ends the wait", (t) => {
  // C not streaming from B at two resolver runs: every voter removed, B commits alone (non-strict).
  t.false(mayTakeOver(key("B", 0, null), "C"));
  t.false(mayTakeOver(key("B", 0, null), "C", ["A"]), "A is no voter: its return does not help");
  t.true(mayTakeOver(key("B", 0, null), "B"), "only the key's leader ends it");
  // A rejoining member counted with quorum 1 until it has caught up (quorum.py adjust_quorum).
  t.false(mayTakeOver(key("B", 1, "A,C"), "C"));
  t.true(mayTakeOver(key("B", 1, "A,C"), "C", ["A"]), "a live voter's vote");
  // C not yet a voter when A failed (it had just rejoined).
  t.false(mayTakeOver(key("A", 0, "B"), "C"));
  t.true(mayTakeOver(key("A", 0, "B"), "C", ["A"]), "the key's leader votes");
});

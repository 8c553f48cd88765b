// Scaling the Citus worker groups: the pure decisions (even spread, transfer mode, which state change
// is a scaling), and what the Pulumi program registers for it under the mocks: a membership per
// worker group that its containers depend on (so a going group's pg_dist_node rows are removed after
// its containers), and one rebalance after the schema and every group.
import test from "ava";
import * as pulumi from "@pulumi/pulumi";
import { PROJECT, SCHEMA_TYPE, byName, byType, devStackConfig, isSecretValue, registrations, reveal, settled, valueOf } from "./_pulumi-harness.ts";
import { chooseTransferMode, isBalanced, type ShardSpread } from "../../components/scaling/citus-workers.ts";
import { workerMembershipProvider, workerRebalanceProvider } from "../../components/scaling/worker-scaling.ts";
import { workerGroupsChange } from "../../local/scale.ts";
import type { StateIdentity } from "../../local/cluster.ts";

const REBALANCE_TYPE = "pulumi-nodejs:dynamic/dpc:WorkerRebalance";
const MEMBERSHIP_TYPE = "pulumi-nodejs:dynamic/dpc:WorkerMembership";
const spread = (shards: Record<string, number>): ShardSpread[] => [{ colocationId: 1, table: "t", tables: ["t"], shards }];

test("isBalanced: at most one shard apart over exactly the given groups", (t) => {
  t.true(isBalanced(spread({ 1: 4, 2: 4, 3: 4 }), [1, 2, 3]));
  t.true(isBalanced(spread({ 1: 3, 2: 3, 3: 2, 4: 2, 5: 2 }), [1, 2, 3, 4, 5]));
  t.false(isBalanced(spread({ 1: 6, 2: 6 }), [1, 2, 3]), "a new group without shards");
  t.false(isBalanced(spread({ 1: 5, 2: 5, 3: 2 }), [1, 2, 3]));
  t.false(isBalanced(spread({ 1: 6, 2: 5, 3: 1 }), [1, 2]), "a shard left on a going group");
  t.true(isBalanced(spread({ 1: 6, 2: 6, 3: 0 }), [1, 2]));
  t.true(isBalanced([], [1, 2]), "no distributed table");
});

test("chooseTransferMode: logical replication unless a table lacks a replica identity", (t) => {
  t.is(chooseTransferMode([]).mode, "force_logical");
  const blocked = chooseTransferMode(["public.events"]);
  t.is(blocked.mode, "block_writes");
  t.regex(blocked.reason, /public\.events/);
});

test("workerGroupsChange: worker groups added or removed at the end, nothing else", (t) => {
  const identity = (workers: number, members = 2): StateIdentity => ({
    scope: "dpc",
    postgresMajor: 15,
    database: "vectors",
    citus: true,
    groups: [["dpc-coordinator-0"], ...Array.from({ length: workers }, (_, g) => Array.from({ length: members }, (_, m) => `dpc-worker${g + 1}-${m}`))],
  });
  t.deepEqual(workerGroupsChange(identity(2), identity(3)), { from: 2, to: 3 });
  t.deepEqual(workerGroupsChange(identity(3), identity(1)), { from: 3, to: 1 });
  t.is(workerGroupsChange(identity(2), identity(2)), undefined);
  t.is(workerGroupsChange(identity(2), identity(3, 3)), undefined, "members per group changed too");
  t.is(workerGroupsChange(identity(2), { ...identity(3), database: "other" }), undefined);
});

test("providers: the rebalance runs again only when workerGroups or the endpoint changes; a membership is replaced when its group changes", async (t) => {
  const inputs = { connectionString: "postgresql://x", workerGroups: 2, timeoutSeconds: 60 };
  t.false((await workerRebalanceProvider.diff!("id", inputs, inputs)).changes);
  t.true((await workerRebalanceProvider.diff!("id", inputs, { ...inputs, workerGroups: 3 })).changes);
  const membership = { connectionString: "postgresql://x", group: 3 };
  t.deepEqual(await workerMembershipProvider.diff!("id", membership, membership), { changes: false, replaces: [] });
  t.deepEqual((await workerMembershipProvider.diff!("id", membership, { ...membership, group: 4 })).replaces, ["group"]);
});

test.serial("under the mocks: a membership per worker group, each group's containers after it; the rebalance after the schema and every group", async (t) => {
  pulumi.runtime.setAllConfig(devStackConfig());
  const stack = await import("../../index.ts");
  await valueOf(stack.appConnectionString);
  await settled();
  const workerGroups = Number(devStackConfig()[`${PROJECT}:workerGroups`]);
  const memberships = byType(MEMBERSHIP_TYPE);
  t.deepEqual(memberships.map((m) => m.inputs.group).sort(), Array.from({ length: workerGroups }, (_, i) => i + 1));
  for (const membership of memberships) {
    const group = membership.inputs.group as number;
    t.is(membership.name, `dpc-worker${group}-membership`);
    t.true(isSecretValue(membership.inputs.connectionString));
    t.regex(String(reveal(membership.inputs.connectionString)), /^postgresql:\/\/postgres:.+@localhost:5000\/vectors$/);
    // It still reaches the coordinator through HAProxy when its group goes: it depends on both.
    for (const name of ["dpc-coordinator-0", "dpc-haproxy"]) t.true(membership.dependencies.includes(byName(name).urn), `${membership.name} -> ${name}`);
    // The group's containers depend on it: deleted first, then the membership removes the rows.
    for (const member of [0, 1]) t.true(byName(`dpc-worker${group}-${member}`).dependencies.includes(membership.urn), `dpc-worker${group}-${member} -> ${membership.name}`);
    // ... and no other group's.
    const others = registrations.filter((r) => r.dependencies.includes(membership.urn) && r.name.startsWith("dpc-worker") && !r.name.startsWith(`dpc-worker${group}`));
    t.deepEqual(others.map((r) => r.name), []);
  }
  const [rebalance, ...more] = byType(REBALANCE_TYPE);
  t.is(more.length, 0);
  t.is(rebalance.inputs.workerGroups, workerGroups);
  t.true(isSecretValue(rebalance.inputs.connectionString));
  t.deepEqual(rebalance.additionalSecretOutputs, ["connectionString"]);
  t.true(rebalance.dependencies.includes(byType(SCHEMA_TYPE)[0].urn), "after the schema");
  for (let group = 1; group <= workerGroups; group++) {
    for (const member of [0, 1]) t.true(rebalance.dependencies.includes(byName(`dpc-worker${group}-${member}`).urn));
  }
  // The serialized providers capture file URLs only: no password, no imported module.
  for (const registration of [rebalance, memberships[0]]) {
    const provider = String(reveal(registration.inputs.__provider));
    t.regex(provider, /components\/scaling\/citus-workers\.ts/);
    t.false(provider.includes("generated-"));
    t.false(/require\("pg"\)/.test(provider));
  }
});

// The rolling replacement of the database containers (components/rollout/replacement.ts, wired by
// components/rolling-replacement.ts and the Docker platform), under Pulumi's mocks: the program runs
// against a fake Docker engine (each container's fingerprint label and whether it runs) and a fake
// Patroni. A registration of a database container is what makes the engine replace it: the hook
// below plays the engine (the container then runs with its new label). Asserted: the order and the
// timing of the registrations (replicas first, a switchover, the former leader; one group at a
// time), and that a run that changes nothing asks Patroni nothing and registers identical inputs.
import test from "ava";
import * as pulumi from "@pulumi/pulumi";
import { CONTAINER, devStackConfig, key, registrations, settled, valueOf, type Registration } from "./_pulumi-harness.ts";
import { recordRegistrations } from "../support/pulumi-recording.ts";
import { useReplacementEnvironment } from "../../components/rolling-replacement.ts";
import type { DeployedContainer, ReplacementEnvironment, RollingReplacement } from "../../components/rollout/replacement.ts";
import { FINGERPRINT_LABEL } from "../../components/platform/docker-fingerprint.ts";
import { FakePatroni, member } from "./_fake-patroni.ts";

const DATABASE = /^dpc-(coordinator|worker\d+)-\d+$/;
const fast = { sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, Math.min(ms, 2))), pollMs: 1, settleMs: 0, stepTimeoutMs: 20_000 };

/** The fake engine: database containers by name. */
const engine = new Map<string, DeployedContainer>();
/** Registrations of database containers and the fake Patroni's calls, in the order they happened. */
const events: string[] = [];
let patroni: FakePatroni | undefined;
let rolls: RollingReplacement[] = [];

const labelOf = (r: Registration): string | undefined =>
  (r.inputs.labels as { label: string; value: string }[] | undefined)?.find((l) => l.label === FINGERPRINT_LABEL)?.value;

// The engine's side: a registered database container replaces the old one and runs with its label.
recordRegistrations((r) => {
  if (r.type !== CONTAINER || !DATABASE.test(r.name)) return;
  const before = engine.get(r.name);
  if (before && before.fingerprint !== labelOf(r)) events.push(`replace ${r.name}`);
  engine.set(r.name, { fingerprint: labelOf(r), running: true, address: `10.0.0.${engine.size + 1}` });
});

const environment: ReplacementEnvironment = {
  deployed: async (name) => {
    const found = engine.get(name);
    return found ? { ...found } : undefined;
  },
  target: async () => {
    targetCalls++;
    return patroni!;
  },
};
/** How often the rollout asked for a Patroni target (each call of Patroni's REST API goes through one). */
let targetCalls = 0;
// The etcd containers do not change here: none deployed, each gets its turn at once (test/unit/etcd-replacement.test.ts rolls them).
useReplacementEnvironment({ environment, options: fast, onCreate: (roll) => rolls.push(roll), etcdEnvironment: { deployed: async () => undefined } });

/** The dev stack's groups as a fake Patroni: member -0 leads, -1 is the synchronous standby. */
function fakePatroniOf(members: Record<string, string[]>): FakePatroni {
  const fake = new FakePatroni(
    Object.fromEntries(Object.entries(members).map(([group, names]) => [Number(group), names.map((n, i) => member(n, i === 0 ? "leader" : i === 1 ? "sync_standby" : "replica"))])),
  );
  // Record the calls in the shared timeline.
  const switchover = fake.switchover.bind(fake);
  fake.switchover = async (group, leader, candidate) => {
    events.push(`switchover ${leader}->${candidate}`);
    await switchover(group, leader, candidate);
  };
  fake.pooler.pause = async () => void events.push("pause");
  fake.pooler.resume = async () => void events.push("resume");
  return fake;
}

async function run(tag: string, extra: Record<string, string> = {}, secretKeys: string[] = []): Promise<Registration[]> {
  const before = registrations.length;
  rolls = [];
  pulumi.runtime.setAllConfig({ ...devStackConfig(), ...extra }, secretKeys);
  const stack = await import(`../../index.ts?${tag}`);
  await valueOf(stack.appConnectionString);
  await settled();
  for (const roll of rolls) await roll.done();
  await settled();
  return registrations.slice(before);
}

const database = (runs: Registration[]) => runs.filter((r) => r.type === CONTAINER && DATABASE.test(r.name));

let first: Registration[] = [];
let same: Registration[] = [];
let memory: Registration[] = [];
let memoryEvents: string[] = [];
let password: Registration[] = [];
let passwordEvents: string[] = [];
let sameEvents: string[] = [];
let sameTargetCalls = -1;
const memoryParameters = new Map<number, Record<string, unknown>>();
let groups: Record<string, string[]> = {};

test.before(async (t) => {
  t.timeout(900_000);
  // First deployment: no container exists, every member's turn comes at once.
  first = await run("first");
  groups = {};
  for (const r of database(first)) {
    const [, kind] = DATABASE.exec(r.name)!;
    const group = kind === "coordinator" ? "0" : kind.replace("worker", "");
    (groups[group] ??= []).push(r.name);
  }
  patroni = fakePatroniOf(groups);
  events.length = 0;
  targetCalls = 0;
  same = await run("same");
  sameEvents = [...events];
  sameTargetCalls = targetCalls;
  events.length = 0;
  memory = await run("memory", { [key("databaseMemoryMb")]: "3072" });
  memoryEvents = [...events];
  for (const [group, parameters] of patroni.config) memoryParameters.set(group, { ...parameters });
  events.length = 0;
  password = await run("password", { [key("databaseMemoryMb")]: "3072", [key("superuserPassword")]: "a-new-superuser-password" }, [key("superuserPassword")]);
  passwordEvents = [...events];
});

test("a first deployment and a run that changes nothing: no Patroni call, no replacement, identical inputs", (t) => {
  t.is(database(first).length, 15);
  t.deepEqual(sameEvents, [], "no replacement, no switchover");
  t.is(sameTargetCalls, 0, "Patroni never asked");
  const byUrn = new Map(first.map((r) => [r.urn, r]));
  t.deepEqual(same.map((r) => r.urn).sort(), [...byUrn.keys()].sort());
  for (const r of same) t.deepEqual(r.inputs, byUrn.get(r.urn)!.inputs, r.urn);
  for (const r of database(first)) t.regex(labelOf(r) ?? "", /^[0-9a-f]{64}$/, `${r.name}: fingerprint label`);
});

/** The expected timeline of one roll over the dev stack's groups, given each group's leader. */
function expectedRoll(leaders: Record<string, string>): string[] {
  const out: string[] = [];
  for (const [group, names] of Object.entries(groups).sort(([a], [b]) => Number(a) - Number(b))) {
    const leader = leaders[group];
    const replicas = names.filter((n) => n !== leader);
    // rolloutPlan: replicas in member order; the switchover to the synchronous standby.
    const sync = patroniRoleBefore.get(group)!;
    for (const r of replicas) out.push(`replace ${r}`);
    if (group === "0") out.push("pause", `switchover ${leader}->${sync}`, "resume");
    else out.push(`switchover ${leader}->${sync}`);
    out.push(`replace ${leader}`);
  }
  return out;
}
const patroniRoleBefore = new Map<string, string>();

test("databaseMemoryMb changed: every database container replaced one at a time, replicas first, one switchover per group, PgBouncer paused around the coordinator's; groups one after the other", (t) => {
  for (const [group, names] of Object.entries(groups)) patroniRoleBefore.set(group, names[1]);
  const leaders = Object.fromEntries(Object.entries(groups).map(([g, names]) => [g, names[0]]));
  t.deepEqual(memoryEvents, expectedRoll(leaders));
  // Every database container was registered anew, with the new memory and a new fingerprint.
  const before = new Map(database(first).map((r) => [r.name, r]));
  for (const r of database(memory)) {
    t.is(r.inputs.memory, 3072, r.name);
    t.not(labelOf(r), labelOf(before.get(r.name)!), r.name);
  }
  // Timing: the registrations came in the roll's order (the engine saw each only in its turn).
  const order = database(memory).map((r) => r.name);
  t.deepEqual(order, memoryEvents.filter((e) => e.startsWith("replace ")).map((e) => e.slice("replace ".length)));
  // The containers nothing changed for (etcd, router, monitoring) are registered with the same inputs.
  const firstByUrn = new Map(first.map((r) => [r.urn, r]));
  for (const r of memory.filter((r) => r.type === CONTAINER && !DATABASE.test(r.name))) t.deepEqual(r.inputs, firstByUrn.get(r.urn)!.inputs, r.name);
  t.deepEqual(rolls.map((roll) => roll.reports.length), [7]);
  // The sized parameters of 3072 MB reached every group's dynamic configuration before its replacements.
  t.is(memoryParameters.get(0)?.shared_buffers, "768MB");
  t.true([...memoryParameters.values()].every((p) => p.shared_buffers === "768MB"));
});

test("a changed superuser password (files of every database container): rolled again, the new leaders' order, each group's former synchronous standby leading", (t) => {
  // After the memory roll each group's leader is its former synchronous standby (member -1).
  const leaders = Object.fromEntries(Object.entries(groups).map(([g, names]) => [g, names[1]]));
  for (const [group, names] of Object.entries(groups)) patroniRoleBefore.set(group, names[0]);
  t.deepEqual(passwordEvents, expectedRoll(leaders));
  t.deepEqual(database(password).map((r) => r.name), passwordEvents.filter((e) => e.startsWith("replace ")).map((e) => e.slice("replace ".length)));
});

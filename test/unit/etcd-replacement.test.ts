// The etcd members' rolling replacement on Docker (components/rollout/etcd-replacement.ts, wired by
// components/rolling-replacement.ts and the Etcd component), under Pulumi's mocks: the program runs
// against a fake Docker engine. A registration of an etcd container is what makes the engine replace
// it: the hook below plays the engine (the new container runs at once, its health check passes a few
// polls later). Asserted: a new etcdImage registers the three etcd containers one at a time, each only
// once the one before runs the new inputs and is healthy again, in member order; the data volumes and
// the members' commands (name, peer URLs, initial cluster) are registered unchanged; a run that changes
// nothing waits for nothing; a member that never becomes healthy stops the roll with an error.
import test from "ava";
import * as pulumi from "@pulumi/pulumi";
import { CONTAINER, devStackConfig, key, registrations, settled, valueOf, type Registration } from "./_pulumi-harness.ts";
import { recordRegistrations } from "../support/pulumi-recording.ts";
import { useReplacementEnvironment } from "../../components/rolling-replacement.ts";
import type { DeployedContainer } from "../../components/rollout/replacement.ts";
import { EtcdRollingReplacement } from "../../components/rollout/etcd-replacement.ts";
import { FINGERPRINT_LABEL } from "../../components/platform/docker-fingerprint.ts";

const ETCD = /^dpc-etcd-\d+$/;
const fast = { sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, Math.min(ms, 2))), pollMs: 1, settleMs: 0, stepTimeoutMs: 20_000 };
/** Polls of a new etcd container before its health check passes (the fake engine's). */
const POLLS_UNTIL_HEALTHY = 3;

type Etcd = DeployedContainer & { healthy: boolean; polls: number };
/** The fake engine: etcd containers by name. */
const engine = new Map<string, Etcd>();
/** Registrations of etcd containers and health transitions, in the order they happened. */
const events: string[] = [];
let rolls: EtcdRollingReplacement[] = [];

const labelOf = (r: Registration): string | undefined =>
  (r.inputs.labels as { label: string; value: string }[] | undefined)?.find((l) => l.label === FINGERPRINT_LABEL)?.value;

// The engine's side: a registered etcd container with other inputs replaces the old one; it runs at
// once and becomes healthy after POLLS_UNTIL_HEALTHY reads.
recordRegistrations((r) => {
  if (r.type !== CONTAINER || !ETCD.test(r.name)) return;
  const before = engine.get(r.name);
  const replaced = before !== undefined && before.fingerprint !== labelOf(r);
  if (replaced) events.push(`replace ${r.name} (healthy now: ${[...engine].filter(([, c]) => c.healthy).map(([n]) => n).join(", ")})`);
  if (!before || replaced) engine.set(r.name, { fingerprint: labelOf(r), running: true, healthy: !before, polls: 0 });
});

useReplacementEnvironment({
  // The database groups: no container changes here; their roll finds nothing outdated.
  environment: { deployed: async () => undefined, target: async () => { throw new Error("Patroni is not asked here"); } },
  options: fast,
  etcdEnvironment: {
    deployed: async (name) => {
      const found = engine.get(name);
      if (!found) return undefined;
      if (!found.healthy && ++found.polls >= POLLS_UNTIL_HEALTHY) {
        found.healthy = true;
        events.push(`healthy ${name}`);
      }
      return { fingerprint: found.fingerprint, running: found.running, healthy: found.healthy };
    },
  },
  etcdOptions: fast,
  onCreateEtcd: (roll) => rolls.push(roll),
});

async function run(tag: string, extra: Record<string, string> = {}): Promise<Registration[]> {
  const before = registrations.length;
  rolls = [];
  pulumi.runtime.setAllConfig({ ...devStackConfig(), ...extra });
  const stack = await import(`../../index.ts?${tag}`);
  await valueOf(stack.appConnectionString);
  await settled();
  for (const roll of rolls) await roll.done();
  await settled();
  return registrations.slice(before);
}

const etcdContainers = (runs: Registration[]) => runs.filter((r) => r.type === CONTAINER && ETCD.test(r.name));

let first: Registration[] = [];
let same: Registration[] = [];
let sameEvents: string[] = [];
let image: Registration[] = [];
let imageEvents: string[] = [];
let reports: Awaited<ReturnType<EtcdRollingReplacement["done"]>>[] = [];

test.before(async (t) => {
  t.timeout(600_000);
  first = await run("first");
  events.length = 0;
  same = await run("same");
  sameEvents = [...events];
  events.length = 0;
  image = await run("image", { [key("etcdImage")]: "quay.io/coreos/etcd:v3.5.18" });
  imageEvents = [...events];
  reports = await Promise.all(rolls.map((roll) => roll.done()));
});

test("a first deployment and a run that changes nothing: the etcd containers carry a fingerprint, nothing waits, identical inputs", (t) => {
  t.deepEqual(etcdContainers(first).map((r) => r.name), ["dpc-etcd-0", "dpc-etcd-1", "dpc-etcd-2"]);
  for (const r of etcdContainers(first)) t.regex(labelOf(r) ?? "", /^[0-9a-f]{64}$/, `${r.name}: fingerprint label`);
  t.deepEqual(sameEvents, [], "no replacement");
  const byUrn = new Map(first.map((r) => [r.urn, r]));
  for (const r of same) t.deepEqual(r.inputs, byUrn.get(r.urn)!.inputs, r.urn);
});

test("a new etcdImage: the three etcd containers replaced one at a time, each after the one before is running and healthy again; volumes and member identity unchanged", (t) => {
  t.deepEqual(imageEvents, [
    "replace dpc-etcd-0 (healthy now: dpc-etcd-0, dpc-etcd-1, dpc-etcd-2)",
    "healthy dpc-etcd-0",
    "replace dpc-etcd-1 (healthy now: dpc-etcd-0, dpc-etcd-1, dpc-etcd-2)",
    "healthy dpc-etcd-1",
    "replace dpc-etcd-2 (healthy now: dpc-etcd-0, dpc-etcd-1, dpc-etcd-2)",
    "healthy dpc-etcd-2",
  ]);
  // The registrations themselves came in that order (the engine saw each only in its turn).
  t.deepEqual(etcdContainers(image).map((r) => r.name), ["dpc-etcd-0", "dpc-etcd-1", "dpc-etcd-2"]);
  t.deepEqual(reports.map((r) => r.replaced.map((x) => x.member)), [["dpc-etcd-0", "dpc-etcd-1", "dpc-etcd-2"]]);
  const before = new Map(first.map((r) => [r.urn, r]));
  for (const r of etcdContainers(image)) {
    const old = before.get(r.urn)!;
    t.is(r.inputs.image, "quay.io/coreos/etcd:v3.5.18", r.name);
    t.not(labelOf(r), labelOf(old), r.name);
    // Same member: its command (name, peer URLs, initial cluster, data directory) and volume.
    t.deepEqual(r.inputs.entrypoints, old.inputs.entrypoints, `${r.name}: etcd's command`);
    t.deepEqual(r.inputs.volumes, old.inputs.volumes, `${r.name}: data volume`);
  }
  // Nothing else changed: volumes and every other container registered with the same inputs.
  for (const r of image.filter((r) => !(r.type === CONTAINER && ETCD.test(r.name)) && before.has(r.urn) && r.type.startsWith("docker:"))) {
    t.deepEqual(r.inputs, before.get(r.urn)!.inputs, r.urn);
  }
});

test("EtcdRollingReplacement: a member that never becomes healthy stops the roll; the members after it never get their turn", async (t) => {
  const containers = new Map<string, DeployedContainer & { healthy: boolean }>([
    ["e0", { fingerprint: "old", running: true, healthy: true }],
    ["e1", { fingerprint: "old", running: true, healthy: true }],
    ["e2", { fingerprint: "new", running: true, healthy: true }],
  ]);
  const roll = new EtcdRollingReplacement(["e0", "e1", "e2"], { deployed: async (m) => containers.get(m) }, { ...fast, stepTimeoutMs: 50 });
  const opened: string[] = [];
  const turns = ["e0", "e1", "e2"].map((m) =>
    roll.turn(m, "new").then(
      () => {
        opened.push(m);
        // The engine replaces it; it never passes its health check.
        containers.set(m, { fingerprint: "new", running: true, healthy: m === "e2" });
      },
      (error: Error) => error.message,
    ),
  );
  await t.throwsAsync(roll.done(), { message: /etcd e0: its new container running and healthy: not within 0 s/ });
  t.is(await turns[1], "etcd rolling replacement: rollout: etcd e0: its new container running and healthy: not within 0 s");
  // e2 ran the wanted inputs already: its turn came at once; e0 got its turn, e1 never did.
  t.deepEqual(opened.sort(), ["e0", "e2"]);
  t.throws(() => roll.turn("e3", "new"), { message: /e3 is not an etcd member/ });
});

test("EtcdRollingReplacement: Patroni paused before the first member is replaced and resumed after the last is healthy; resumed when the roll fails too; not paused when nothing changes", async (t) => {
  const run = async (healthyAfter: boolean, fingerprint: string) => {
    const containers = new Map<string, DeployedContainer & { healthy: boolean }>(["e0", "e1"].map((m) => [m, { fingerprint: "old", running: true, healthy: true }]));
    const events: string[] = [];
    const roll = new EtcdRollingReplacement(
      ["e0", "e1"],
      { deployed: async (m) => containers.get(m), maintenance: async (paused) => void events.push(paused ? "pause" : "resume") },
      { ...fast, stepTimeoutMs: 50 },
    );
    const turns = ["e0", "e1"].map((m) =>
      roll.turn(m, fingerprint).then(
        () => {
          if (fingerprint === "old") return;
          events.push(`replace ${m}`);
          containers.set(m, { fingerprint, running: true, healthy: healthyAfter });
        },
        () => undefined,
      ),
    );
    const outcome = await roll.done().then(
      (report) => report.replaced.map((r) => r.member).join(", "),
      (error: Error) => error.message,
    );
    await Promise.all(turns);
    return { events, outcome };
  };
  t.deepEqual(await run(true, "new"), { events: ["pause", "replace e0", "replace e1", "resume"], outcome: "e0, e1" });
  const failed = await run(false, "new");
  t.deepEqual(failed.events, ["pause", "replace e0", "resume"]);
  t.regex(failed.outcome, /etcd e0: its new container running and healthy: not within/);
  t.deepEqual(await run(true, "old"), { events: [], outcome: "" });
});

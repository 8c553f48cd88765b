// The rolling change of PostgreSQL parameters (components/rollout/), driven against a fake Patroni:
// the DCS patch, the restart order, one switchover per group, PgBouncer paused around the
// coordinator's switchover only.
import test from "ava";
import { applyParameters, gatedSwitchover, rollGroup } from "../../components/rollout/orchestrate.ts";
import { parameterPatch, parameterText } from "../../components/rollout/parameters.ts";
import { FakePatroni, member } from "./_fake-patroni.ts";

const noWait = { sleep: async () => undefined, settleMs: 0, pollMs: 0 };

const cluster = () =>
  new FakePatroni({
    0: [member("c-0", "leader"), member("c-1", "sync_standby"), member("c-2", "replica")],
    1: [member("w1-0", "sync_standby"), member("w1-1", "leader")],
  });

test("parameterPatch: changed and new parameters set, parameters no longer wanted removed, equal ones left out", (t) => {
  t.deepEqual(parameterPatch({ work_mem: "4MB", a: 1, hot: "on" }, { work_mem: "8MB", a: "1", hot: true, b: 2 }), {
    postgresql: { parameters: { work_mem: "8MB", b: 2 } },
  });
  t.deepEqual(parameterPatch({ work_mem: "4MB", old: "x" }, { work_mem: "4MB" }), { postgresql: { parameters: { old: null } } });
  t.is(parameterPatch({ work_mem: "4MB", max_connections: 200 }, { max_connections: "200", work_mem: "4MB" }), undefined);
  t.deepEqual([true, false, 5, "x"].map(parameterText), ["on", "off", "5", "x"]);
});

test("a reload-only change: each group's DCS patched once, no restart, no switchover, PgBouncer never paused", async (t) => {
  const fake = cluster();
  const report = await applyParameters(fake, { work_mem: "16MB", shared_buffers: "128MB" }, noWait);
  t.deepEqual(fake.events, ["patch 0 work_mem", "patch 1 work_mem"]);
  t.deepEqual(report.groups.map((g) => [g.group, g.changed, g.restarted, g.switchovers.length]), [
    [0, ["work_mem"], [], 0],
    [1, ["work_mem"], [], 0],
  ]);
  t.is(fake.config.get(1)!.work_mem, "16MB");
});

test("a restart-only change: replicas restarted one at a time, then one switchover per group; the demoted leader needs no restart of its own", async (t) => {
  const fake = cluster();
  const report = await applyParameters(fake, { work_mem: "4MB", shared_buffers: "256MB" }, noWait);
  t.deepEqual(fake.events, [
    "patch 0 shared_buffers",
    "patch 1 shared_buffers",
    "restart 0 c-1 (sync_standby)",
    "restart 0 c-2 (replica)",
    "pause",
    "switchover 0 c-0->c-1",
    "resume",
    "restart 1 w1-0 (sync_standby)",
    "switchover 1 w1-1->w1-0",
  ]);
  t.deepEqual(fake.pausedAtSwitchover, [true, false], "PgBouncer paused around the coordinator's switchover only");
  t.deepEqual(report.groups.map((g) => g.switchovers.map((s) => `${s.from}->${s.to}`)), [["c-0->c-1"], ["w1-1->w1-0"]]);
  for (const group of [0, 1]) t.true((await fake.members(group))!.every((m) => !m.pendingRestart));
  // Applying the same wanted set again changes nothing.
  fake.events.length = 0;
  await applyParameters(fake, { work_mem: "4MB", shared_buffers: "256MB" }, noWait);
  t.deepEqual(fake.events, []);
});

test("a former leader still pending after its demotion is restarted last, as a standby", async (t) => {
  const fake = cluster();
  fake.keepPendingOnDemotion.add("c-0");
  await applyParameters(fake, { work_mem: "4MB", shared_buffers: "256MB" }, noWait);
  t.deepEqual(fake.events.slice(2, 7), ["restart 0 c-1 (sync_standby)", "restart 0 c-2 (replica)", "pause", "switchover 0 c-0->c-1", "resume"]);
  t.is(fake.events[7], "restart 0 c-0 (sync_standby)");
});

test("PgBouncer is resumed when the switchover fails, and the failure is reported", async (t) => {
  const fake = cluster();
  fake.switchover = async () => {
    fake.events.push("switchover refused");
    throw new Error("Patroni: switchover is not possible");
  };
  await t.throwsAsync(applyParameters(fake, { work_mem: "4MB", shared_buffers: "256MB" }, noWait), { message: /switchover is not possible/ });
  t.false(fake.paused);
  t.deepEqual(fake.events.slice(-3), ["pause", "switchover refused", "resume"]);
});

test("the gate resumes PgBouncer once the new leader is routed alone, before Patroni answers /switchover (it answers on whole seconds)", async (t) => {
  const fake = cluster();
  const switchover = fake.switchover.bind(fake);
  let answer!: () => void;
  fake.switchover = async (group, leader, candidate) => {
    await switchover(group, leader, candidate); // the leader moves at once ...
    await new Promise<void>((resolve) => (answer = resolve)); // ... Patroni answers later
    fake.events.push("answered");
  };
  const resumed = new Promise<void>((resolve) => {
    const resume = fake.pooler.resume;
    fake.pooler.resume = async () => {
      await resume();
      resolve();
    };
  });
  const report = gatedSwitchover(fake, 0, "c-0", "c-1", noWait);
  await resumed;
  answer();
  t.deepEqual(await report, { group: 0, from: "c-0", to: "c-1", seconds: (await report).seconds, paused: true, startedAt: (await report).startedAt });
  t.deepEqual(fake.events, ["pause", "switchover 0 c-0->c-1", "resume", "answered"]);
});

test("a refusal Patroni sends after a while still ends the gate's wait, with PgBouncer resumed", async (t) => {
  const fake = cluster();
  fake.switchover = async () => {
    await new Promise((resolve) => setTimeout(resolve, 20));
    fake.events.push("switchover refused");
    throw new Error("Patroni: Switchover failed");
  };
  // A real sleep between polls: the refusal arrives on a timer.
  const polling = { sleep: (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)), pollMs: 1 };
  await t.throwsAsync(gatedSwitchover(fake, 0, "c-0", "c-1", polling), { message: /Switchover failed/ });
  t.false(fake.paused);
  t.deepEqual(fake.events, ["pause", "switchover refused", "resume"]);
});

test("rollGroup with all: every member restarted in order even without pending_restart (a new image or pod template)", async (t) => {
  const fake = cluster();
  const report = await rollGroup(fake, 0, { ...noWait, all: true });
  t.deepEqual(fake.events, ["restart 0 c-1 (sync_standby)", "restart 0 c-2 (replica)", "pause", "switchover 0 c-0->c-1", "resume"]);
  t.deepEqual(report.restarted, ["c-1", "c-2"]);
});

test("rollGroup with only and demotionRestarts false: the listed members only, the former leader restarted itself after its switchover (a replaced container)", async (t) => {
  const fake = cluster();
  const report = await rollGroup(fake, 0, { ...noWait, only: ["c-0", "c-2"], demotionRestarts: false });
  t.deepEqual(fake.events, ["restart 0 c-2 (replica)", "pause", "switchover 0 c-0->c-1", "resume", "restart 0 c-0 (sync_standby)"]);
  t.deepEqual(report.restarted, ["c-2", "c-0"]);
  // Only replicas listed: no switchover.
  const second = cluster();
  await rollGroup(second, 1, { ...noWait, only: ["w1-0"], demotionRestarts: false });
  t.deepEqual(second.events, ["restart 1 w1-0 (sync_standby)"]);
});

test("a group that never becomes healthy fails the rollout with the group named, after the step timeout", async (t) => {
  const fake = new FakePatroni({ 0: [member("c-0", "leader"), { ...member("c-1", "replica"), state: "starting" }] });
  let clock = 0;
  await t.throwsAsync(
    rollGroup(fake, 0, { sleep: async (ms) => void (clock += Math.max(ms, 1000)), now: () => clock, stepTimeoutMs: 5000, pollMs: 1000 }),
    { message: /group 0 healthy: not within 5 s/ },
  );
});

test("worker switchovers gated too when the target says so (a REST API rotation): PgBouncer resumed only once Citus routes the group to the new leader", async (t) => {
  const fake = cluster();
  // pg_dist_node follows the new leader two polls after it leads (Patroni's after_promote).
  let polls = 0;
  const routedWorker: string[] = [];
  fake.gatesWorkerSwitchovers = async () => true;
  fake.routedWorker = async (group: number, member: string) => {
    routedWorker.push(`${group} ${member} ${fake.paused ? "paused" : "running"}`);
    return ++polls >= 3;
  };
  const report = await rollGroup(fake, 1, { ...noWait, all: true });
  t.deepEqual(fake.events, ["restart 1 w1-0 (sync_standby)", "pause", "switchover 1 w1-1->w1-0", "resume"]);
  t.deepEqual(fake.pausedAtSwitchover, [true]);
  t.deepEqual(routedWorker, ["1 w1-0 paused", "1 w1-0 paused", "1 w1-0 paused"], "resumed only after pg_dist_node named the new leader");
  t.true(report.switchovers[0].paused);
  // Without the target's say-so a worker's switchover is not gated (Patroni's announcement holds the group).
  const plain = cluster();
  await rollGroup(plain, 1, { ...noWait, all: true });
  t.deepEqual(plain.pausedAtSwitchover, [false]);
  // A refused switchover resumes PgBouncer too.
  const refused = cluster();
  refused.gatesWorkerSwitchovers = async () => true;
  refused.switchover = async () => {
    throw new Error("Patroni: switchover is not possible");
  };
  await t.throwsAsync(gatedSwitchover(refused, 1, "w1-1", "w1-0", noWait), { message: /not possible/ });
  t.false(refused.paused);
});

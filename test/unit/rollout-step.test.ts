// The rollout deploy step (components/rollout/step.ts) with a fake Patroni and a fake pod API: the
// parameters patched first, then the groups in the given order (workers, coordinator last), each
// with its outdated pods replaced (one switchover) and only then its pending restarts; a parameter
// change alone restarts members without deleting a pod; nothing changed, nothing done; bad input is
// final; a PAUSE held when the pod is stopped is undone.
import test from "ava";
import type { PodApi, PodState } from "../../components/rollout/kubernetes.ts";
import { RolloutInputError, rolloutInputProblems, runRolloutStep, urlAt, withPauseGuard, withRouterPods, type RolloutStepInputs } from "../../components/rollout/step.ts";
import { FakePatroni, member } from "./_fake-patroni.ts";

/** StatefulSets updating OnDelete: a deleted pod comes back from the new template, and its PostgreSQL starts with the DCS configuration. */
class FakePods implements PodApi {
  readonly state = new Map<string, PodState & { set: string; group: number }>();
  constructor(private readonly patroni: FakePatroni, sets: Record<string, { group: number; members: string[] }>, updated: boolean) {
    for (const [set, { group, members }] of Object.entries(sets)) for (const name of members) this.state.set(name, { name, set, group, updated, ready: true });
  }
  async pods(set: string): Promise<PodState[]> {
    return [...this.state.values()].filter((p) => p.set === set).map(({ name, updated, ready }) => ({ name, updated, ready }));
  }
  async deletePod(name: string): Promise<void> {
    const pod = this.state.get(name)!;
    const m = this.patroni.state.get(pod.group)!.find((x) => x.name === name)!;
    this.patroni.events.push(`delete ${name} (${m.role})`);
    pod.updated = true;
    m.pendingRestart = false;
  }
}

const SETS = {
  "dpc-worker1": { group: 1, members: ["w1-0", "w1-1"] },
  "dpc-coordinator": { group: 0, members: ["c-0", "c-1", "c-2"] },
};

function cluster() {
  return new FakePatroni({
    0: [member("c-0", "leader"), member("c-1", "replica"), member("c-2", "sync_standby")],
    1: [member("w1-0", "sync_standby"), member("w1-1", "leader")],
  });
}

/** The step's input: worker group first, the coordinator group last (as rollout-run.ts orders them). */
const inputs = (parameters: Record<string, string>): RolloutStepInputs => ({
  namespace: "dpc",
  groups: Object.entries(SETS).map(([statefulSet, { group, members }]) => ({ group, statefulSet, members: members.map((name) => ({ name, restUrl: `http://${name}:8008` })) })),
  restAuth: "patroni:secret",
  poolerAdminUrl: "postgresql://postgres:secret@pgbouncer:6432/pgbouncer",
  readWriteUrl: "postgresql://postgres:secret@haproxy:5000/postgres",
  parameters,
  stepTimeoutSeconds: 60,
});

const noWait = { sleep: async () => undefined, settleMs: 0, pollMs: 0 };

test("a new template and a restart-only parameter together: patched first, workers then the coordinator, one switchover per group, no extra restart", async (t) => {
  const patroni = cluster();
  // FakePatroni's [work_mem 4MB, shared_buffers 128MB]: shared_buffers needs a restart.
  const result = await runRolloutStep(inputs({ work_mem: "4MB", shared_buffers: "256MB" }), { pods: new FakePods(patroni, SETS, false), target: patroni, options: noWait });
  t.deepEqual(patroni.events, [
    // The parameters reach the DCS of both groups before any pod goes.
    "patch 1 shared_buffers",
    "patch 0 shared_buffers",
    "delete w1-0 (sync_standby)",
    "switchover 1 w1-1->w1-0",
    "delete w1-1 (sync_standby)",
    "delete c-1 (replica)",
    "delete c-2 (sync_standby)",
    "pause",
    "switchover 0 c-0->c-2",
    "resume",
    "delete c-0 (sync_standby)",
  ]);
  t.deepEqual(
    result.groups.map((g) => ({ ...g, switchovers: g.switchovers.map((s) => s.replace(/\(\d+\.\d\d s/, "(s")) })),
    [
      { group: 1, statefulSet: "dpc-worker1", changed: ["shared_buffers"], deleted: ["w1-0", "w1-1"], restarted: [], switchovers: ["w1-1 -> w1-0 (s)"] },
      { group: 0, statefulSet: "dpc-coordinator", changed: ["shared_buffers"], deleted: ["c-1", "c-2", "c-0"], restarted: [], switchovers: ["c-0 -> c-2 (s, PgBouncer paused)"] },
    ],
  );
  t.true(result.seconds >= 0);
  t.false(patroni.paused);
});

test("a parameter change alone: no pod deleted, the pending members restarted in the same order", async (t) => {
  const patroni = cluster();
  const result = await runRolloutStep(inputs({ work_mem: "4MB", shared_buffers: "256MB" }), { pods: new FakePods(patroni, SETS, true), target: patroni, options: noWait });
  t.deepEqual(patroni.events, [
    "patch 1 shared_buffers",
    "patch 0 shared_buffers",
    "restart 1 w1-0 (sync_standby)",
    "switchover 1 w1-1->w1-0",
    "restart 0 c-1 (replica)",
    "restart 0 c-2 (sync_standby)",
    "pause",
    "switchover 0 c-0->c-2",
    "resume",
  ]);
  t.deepEqual(result.groups.map((g) => [g.deleted, g.restarted]), [[[], ["w1-0"]], [[], ["c-1", "c-2"]]]);
});

test("nothing changed: nothing patched, deleted or restarted", async (t) => {
  const patroni = cluster();
  const result = await runRolloutStep(inputs({ work_mem: "4MB", shared_buffers: "128MB" }), { pods: new FakePods(patroni, SETS, true), target: patroni, options: noWait });
  t.deepEqual(patroni.events, []);
  t.deepEqual(result.groups.map((g) => [g.changed, g.deleted, g.restarted, g.switchovers]), [[[], [], [], []], [[], [], [], []]]);
});

test("bad input fails for good, naming every field, value and what is allowed", async (t) => {
  const bad = { ...inputs({}), namespace: "Not_A_Label", groups: [{ group: -1, statefulSet: "", members: [] }], stepTimeoutSeconds: 0 } as RolloutStepInputs;
  t.deepEqual(rolloutInputProblems(bad), [
    'namespace: got "Not_A_Label"; allowed: a DNS label',
    "groups[0].group: got -1; allowed: a Citus group number not given before",
    'groups[0].statefulSet: got ""; allowed: a DNS label',
    "groups[0].members: got []; allowed: at least one member",
    "stepTimeoutSeconds: got 0; allowed: a positive number of seconds",
  ]);
  const patroni = cluster();
  const error = await t.throwsAsync(runRolloutStep(bad, { pods: new FakePods(patroni, SETS, true), target: patroni, options: noWait }), { instanceOf: RolloutInputError });
  t.true((error as RolloutInputError).final);
  t.false(error!.message.includes("secret"), "no credential in the message");
  t.deepEqual(patroni.events, []);
});

test("a PAUSE still held when the step is stopped is undone by the guard; none held, nothing sent", async (t) => {
  const patroni = cluster();
  const guard = withPauseGuard(patroni);
  t.false(await guard.release());
  await guard.target.pooler!.pause();
  t.true(patroni.paused);
  t.true(await guard.release());
  t.false(patroni.paused);
  t.deepEqual(patroni.events, ["pause", "resume"]);
  // Paused and resumed by the switchover itself: nothing left to undo.
  await guard.target.pooler!.pause();
  await guard.target.pooler!.resume();
  t.false(await guard.release());
  // The guarded target is the target otherwise.
  t.deepEqual(guard.target.groups, [0, 1]);
  t.is((await guard.target.members(1))!.length, 2);
  // runRolloutStep hands the guard to the process's SIGTERM handler.
  let handed: (() => Promise<boolean>) | undefined;
  await runRolloutStep(inputs({ work_mem: "4MB", shared_buffers: "128MB" }), { pods: new FakePods(patroni, SETS, true), target: patroni, options: noWait, onTerminate: (release) => (handed = release) });
  t.is(typeof handed, "function");
});

test("several PgBouncer and HAProxy pods: PAUSE and RESUME on every ready PgBouncer pod at its address, routed alone only when every HAProxy pod says so", async (t) => {
  const patroni = cluster();
  const calls: string[] = [];
  const failPause = new Set<string>();
  const notRouted = new Set<string>();
  // A pod's admin URLs: the current credentials' first (the previous ones after it, during a rotation).
  const host = (url: string | string[]) => new URL(Array.isArray(url) ? url[0] : url).hostname;
  const at = (one: { poolerAdminUrl?: string | string[]; readWriteUrl?: string }) => ({
    pooler: {
      pause: async () => {
        calls.push(`PAUSE ${host(one.poolerAdminUrl!)}`);
        if (failPause.has(host(one.poolerAdminUrl!))) throw new Error("connection refused");
      },
      resume: async () => void calls.push(`RESUME ${host(one.poolerAdminUrl!)}`),
    },
    routedAlone: async (member: string) => (calls.push(`routed? ${host(one.readWriteUrl!)} ${member}`), !notRouted.has(host(one.readWriteUrl!))),
  });
  const pods = async (labels: Record<string, string>) =>
    labels["dpc/kind"] === "pgbouncer"
      ? [{ name: "pgb-a", ip: "10.244.0.11" }, { name: "pgb-b", ip: "10.244.1.12" }]
      : [{ name: "hap-a", ip: "10.244.0.21" }, { name: "hap-b", ip: "10.244.1.22" }];
  const routers = { pgbouncer: { "dpc/kind": "pgbouncer" }, haproxy: { "dpc/kind": "haproxy" } };
  const target = withRouterPods(patroni, inputs({}), routers, pods, at);
  await target.pooler!.pause();
  await target.pooler!.resume();
  t.deepEqual(calls, ["PAUSE 10.244.0.11", "PAUSE 10.244.1.12", "RESUME 10.244.0.11", "RESUME 10.244.1.12"]);
  calls.length = 0;
  t.true(await target.routedAlone!("c-2"));
  notRouted.add("10.244.1.22");
  t.false(await target.routedAlone!("c-2"));
  t.deepEqual(calls, ["routed? 10.244.0.21 c-2", "routed? 10.244.1.22 c-2", "routed? 10.244.0.21 c-2", "routed? 10.244.1.22 c-2"]);
  // A pod that cannot be paused: the ones already paused are resumed before the error goes on.
  calls.length = 0;
  failPause.add("10.244.1.12");
  await t.throwsAsync(target.pooler!.pause(), { message: /^rollout: PAUSE of PgBouncer pod pgb-b failed \(the others resumed\): connection refused$/ });
  t.deepEqual(calls, ["PAUSE 10.244.0.11", "PAUSE 10.244.1.12", "RESUME 10.244.0.11", "RESUME 10.244.1.12"]);
  // The rest of the target is the target's.
  t.deepEqual(target.groups, [0, 1]);
  // The URLs keep user, password, port and database.
  t.is(urlAt("postgresql://postgres:p%40ss@dpc-pgbouncer.dpc.svc.cluster.local:6432/pgbouncer", "10.244.0.11"), "postgresql://postgres:p%40ss@10.244.0.11:6432/pgbouncer");
  t.is(urlAt("postgresql://postgres:x@dpc-haproxy:5000/postgres", "fd00::5"), "postgresql://postgres:x@[fd00::5]:5000/postgres");
});

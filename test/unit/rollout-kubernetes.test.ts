// The Kubernetes pod rollout (components/rollout/kubernetes.ts) against a fake API server and a fake
// Patroni: outdated pods deleted replicas first, one at a time, each waited for; one switchover
// (PgBouncer paused for the coordinator); the former leader's pod last.
import test from "ava";
import { kubernetesRollout, type PodApi, type PodState } from "../../components/rollout/kubernetes.ts";
import { FakePatroni, member } from "./_fake-patroni.ts";

/** A StatefulSet with OnDelete: a deleted pod comes back from the new template, not ready for two polls. */
class FakeKubernetes implements PodApi {
  readonly pods_ = new Map<string, PodState & { polls: number }>();
  readonly events: string[];
  constructor(names: string[], events: string[], private readonly patroni: FakePatroni, private readonly group: number) {
    for (const name of names) this.pods_.set(name, { name, updated: false, ready: true, polls: 0 });
    this.events = events;
  }
  async pods(): Promise<PodState[]> {
    for (const pod of this.pods_.values()) {
      if (!pod.ready && ++pod.polls >= 2) pod.ready = true;
    }
    return [...this.pods_.values()].map(({ name, updated, ready }) => ({ name, updated, ready }));
  }
  async deletePod(name: string): Promise<void> {
    const m = (await this.patroni.members(this.group))!.find((x) => x.name === name)!;
    this.events.push(`delete ${name} (${m.role})`);
    // Every ready member must be running when a pod is deleted: the order never takes two at once.
    if ([...this.pods_.values()].some((p) => !p.ready)) throw new Error("a pod was deleted while another was not ready");
    this.pods_.set(name, { name, updated: true, ready: false, polls: 0 });
  }
}

const noWait = { sleep: async () => undefined, settleMs: 0, pollMs: 0 };

test("coordinator group: replicas' pods first, then a switchover with PgBouncer paused, then the former leader's pod", async (t) => {
  const patroni = new FakePatroni({ 0: [member("c-0", "leader"), member("c-1", "replica"), member("c-2", "sync_standby")] });
  const kube = new FakeKubernetes(["c-0", "c-1", "c-2"], patroni.events, patroni, 0);
  const report = await kubernetesRollout(kube, patroni, 0, "dpc-coordinator", noWait);
  t.deepEqual(patroni.events, ["delete c-1 (replica)", "delete c-2 (sync_standby)", "pause", "switchover 0 c-0->c-2", "resume", "delete c-0 (sync_standby)"]);
  t.deepEqual(report.deleted, ["c-1", "c-2", "c-0"]);
  t.is(report.switchovers.length, 1);
  t.deepEqual(patroni.pausedAtSwitchover, [true]);
  t.true((await kube.pods()).every((p) => p.updated && p.ready));
});

test("worker group: no PgBouncer pause; nothing to do when every pod is updated", async (t) => {
  const patroni = new FakePatroni({ 1: [member("w-0", "sync_standby"), member("w-1", "leader")] });
  const kube = new FakeKubernetes(["w-0", "w-1"], patroni.events, patroni, 1);
  await kubernetesRollout(kube, patroni, 1, "dpc-worker1", noWait);
  t.deepEqual(patroni.events, ["delete w-0 (sync_standby)", "switchover 1 w-1->w-0", "delete w-1 (sync_standby)"]);
  t.deepEqual(patroni.pausedAtSwitchover, [false]);
  patroni.events.length = 0;
  const again = await kubernetesRollout(kube, patroni, 1, "dpc-worker1", noWait);
  t.deepEqual([patroni.events, again.deleted], [[], []]);
});

test("an updated leader: only the outdated replicas' pods, no switchover", async (t) => {
  const patroni = new FakePatroni({ 0: [member("c-0", "leader"), member("c-1", "sync_standby")] });
  const kube = new FakeKubernetes(["c-0", "c-1"], patroni.events, patroni, 0);
  kube.pods_.get("c-0")!.updated = true;
  await kubernetesRollout(kube, patroni, 0, "dpc-coordinator", noWait);
  t.deepEqual(patroni.events, ["delete c-1 (sync_standby)"]);
});

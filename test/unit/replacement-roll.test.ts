// The rolling replacement's orchestration (components/rollout/replacement.ts) against a fake engine
// and a fake Patroni, without the program; and the containers' fingerprint
// (components/platform/docker-fingerprint.ts). The program under the mocks: rolling-replacement.test.ts.
import test from "ava";
import { RollingReplacement, type DeployedContainer } from "../../components/rollout/replacement.ts";
import { containerFingerprint, canonicalJson, IN_PLACE_FIELDS } from "../../components/platform/docker-fingerprint.ts";
import { FakePatroni, member } from "./_fake-patroni.ts";

const fast = { sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, Math.min(ms, 2))), pollMs: 1, settleMs: 0 };

test("containerFingerprint: keyed, blind to in-place fields and key order, sensitive to everything else", (t) => {
  const inputs = { image: "img@sha256:1", uploads: [{ file: "/a", content: "x" }], memory: 512, restart: "unless-stopped", labels: [{ label: "a", value: "b" }], shmSize: 192 };
  const base = containerFingerprint(inputs, "k");
  t.regex(base, /^[0-9a-f]{64}$/);
  t.not(containerFingerprint(inputs, "other key"), base);
  t.is(containerFingerprint({ ...inputs, memory: 1024, restart: "always", destroyGraceSeconds: 5, labels: [] }, "k"), base, "in-place fields");
  t.is(containerFingerprint(Object.fromEntries(Object.entries(inputs).reverse()), "k"), base, "key order");
  t.not(containerFingerprint({ ...inputs, image: "img@sha256:2" }, "k"), base);
  t.not(containerFingerprint({ ...inputs, uploads: [{ file: "/a", content: "y" }] }, "k"), base);
  t.not(containerFingerprint({ ...inputs, shmSize: 224 }, "k"), base);
  t.not(containerFingerprint({ ...inputs, healthcheck: { tests: ["CMD", "true"] } }, "k"), base, "a healthcheck change is applied only by a replacement");
  t.deepEqual([...IN_PLACE_FIELDS], ["restart", "memory", "memorySwap", "destroyGraceSeconds", "labels"]);
  t.is(canonicalJson({ b: [1, { d: 1, c: undefined }], a: "x" }), '{"a":"x","b":[1,{"d":1}]}');
  t.throws(() => containerFingerprint(inputs, ""));
});

// The orchestration alone, without the program.
const roll = (fake: FakePatroni, deployed: Map<string, DeployedContainer>, names: Record<number, string[]>) =>
  new RollingReplacement(
    Object.entries(names).map(([group, members]) => ({ group: Number(group), members })),
    { deployed: async (n) => deployed.get(n), target: async () => fake },
    { ...fast, stepTimeoutMs: 200, replaceTimeoutMs: 200 },
  );

test("RollingReplacement: new members and unchanged members get their turn at once, without asking Patroni", async (t) => {
  const fake = new FakePatroni({ 0: [member("c-0", "leader"), member("c-1", "sync_standby")] });
  Object.assign(fake, {
    members: async () => {
      throw new Error("Patroni asked");
    },
  });
  const deployed = new Map<string, DeployedContainer>([["c-0", { fingerprint: "a", running: true }]]);
  const r = roll(fake, deployed, { 0: ["c-0", "c-1"] });
  await Promise.all([r.turn("c-0", "a"), r.turn("c-1", "b")]);
  t.deepEqual(await r.done(), [{ group: 0, restarted: [], switchovers: [], outdated: [], changed: [] }]);
});

test("RollingReplacement: a refused switchover fails the former leader's turn and the later groups', and PgBouncer is resumed", async (t) => {
  const fake = new FakePatroni({ 0: [member("c-0", "leader"), member("c-1", "sync_standby")], 1: [member("w-0", "leader"), member("w-1", "sync_standby")] });
  fake.switchover = async () => {
    throw new Error("switchover is not possible");
  };
  const deployed = new Map<string, DeployedContainer>(["c-0", "c-1", "w-0", "w-1"].map((n) => [n, { fingerprint: "old", running: true }]));
  const r = roll(fake, deployed, { 0: ["c-0", "c-1"], 1: ["w-0", "w-1"] });
  const c1 = r.turn("c-1", "new");
  const c0 = r.turn("c-0", "new");
  // The engine's side: c-1 comes back with its new container.
  await c1;
  deployed.set("c-1", { fingerprint: "new", running: true });
  await t.throwsAsync(c0, { message: /group 0: .*switchover is not possible/ });
  const w0 = r.turn("w-0", "new");
  const w1 = r.turn("w-1", "new");
  await t.throwsAsync(w1, { message: /group 0/ });
  await t.throwsAsync(w0);
  t.false(fake.paused);
  await t.throwsAsync(r.done(), { message: /group 0/ });
});

test("RollingReplacement: a container that does not come back in time fails the roll, naming it", async (t) => {
  const fake = new FakePatroni({ 0: [member("c-0", "leader"), member("c-1", "sync_standby")] });
  const deployed = new Map<string, DeployedContainer>(["c-0", "c-1"].map((n) => [n, { fingerprint: "old", running: true }]));
  const r = roll(fake, deployed, { 0: ["c-0", "c-1"] });
  const c1 = r.turn("c-1", "new");
  void r.turn("c-0", "new").catch(() => undefined);
  await c1; // its turn came; the engine never replaces it
  await t.throwsAsync(r.done(), { message: /c-1: its new container running: not within/ });
});

test("RollingReplacement: the wanted parameters reach the dynamic configuration before the group's first replacement, and only for a group that is rolled", async (t) => {
  const fake = new FakePatroni({ 0: [member("c-0", "leader"), member("c-1", "sync_standby")], 1: [member("w-0", "leader"), member("w-1", "sync_standby")] });
  const timeline: string[] = [];
  const patch = fake.patchConfig.bind(fake);
  fake.patchConfig = async (group, p) => {
    timeline.push(`patch ${group}`);
    await patch(group, p);
  };
  const deployed = new Map<string, DeployedContainer>([
    ["c-0", { fingerprint: "old", running: true }],
    ["c-1", { fingerprint: "old", running: true }],
    ["w-0", { fingerprint: "same", running: true }],
    ["w-1", { fingerprint: "same", running: true }],
  ]);
  const r = new RollingReplacement(
    [{ group: 0, members: ["c-0", "c-1"] }, { group: 1, members: ["w-0", "w-1"] }],
    { deployed: async (n) => deployed.get(n), target: async () => fake },
    { ...fast, stepTimeoutMs: 2000, replaceTimeoutMs: 2000, parameters: { work_mem: "4MB", shared_buffers: "256MB" } },
  );
  const turns = ["c-0", "c-1"].map((n) => r.turn(n, "new").then(() => {
    timeline.push(`turn ${n}`);
    deployed.set(n, { fingerprint: "new", running: true });
  }));
  await Promise.all([...turns, r.turn("w-0", "same"), r.turn("w-1", "same")]);
  const reports = await r.done();
  t.deepEqual(timeline, ["patch 0", "turn c-1", "turn c-0"]);
  t.is(fake.config.get(0)!.shared_buffers, "256MB");
  t.is(fake.config.get(1)!.shared_buffers, "128MB", "a group with nothing to replace is left to PostgresConfig");
  t.deepEqual(reports.map((x) => [x.group, x.changed, x.outdated]), [[1, [], []], [0, ["shared_buffers"], ["c-0", "c-1"]]]);
});

// The rollout step's Kubernetes API client (components/platform/kubernetes/pod-api.ts) against a fake
// API server over HTTPS, its certificate signed by a CA of the test's own: the bearer token and the
// CA are used (a client without the CA is refused by TLS, a wrong token by the server), the paths
// and verbs are the three the rollout Role allows, and kubernetesRollout driven through it deletes
// the replicas' pods first, switches over, and deletes the former primary's pod last.
import test from "ava";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { kubernetesPodApi, labelSelector, podState, readyPodAddresses } from "../../components/platform/kubernetes/pod-api.ts";
import { KubernetesApiError, type ApiAccess } from "../../components/platform/kubernetes/api-request.ts";
import { kubernetesRollout } from "../../components/rollout/kubernetes.ts";
import { FakePatroni, member } from "./_fake-patroni.ts";

const TOKEN = "sa-token-of-the-rollout";
const NS = "dpc";
const SET = "dpc-coordinator";
const SELECTOR = { "app.kubernetes.io/part-of": "dpc", "app.kubernetes.io/component": SET };

/** A CA and a certificate for 127.0.0.1 signed by it (openssl), as PEM. */
function certificates() {
  const dir = mkdtempSync(join(tmpdir(), "dpc-ca-"));
  const run = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  try {
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=test API CA");
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1");
    writeFileSync(join(dir, "san.ext"), "subjectAltName=IP:127.0.0.1\n");
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.crt", "-days", "1", "-extfile", "san.ext");
    const read = (name: string) => readFileSync(join(dir, name), "utf8");
    return { ca: read("ca.crt"), cert: read("server.crt"), key: read("server.key") };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface FakePod {
  revision: string;
  ready: boolean;
  /** Polls until a recreated pod turns ready. */
  readyAfter: number;
}

/**
 * The API server's part of a StatefulSet updating OnDelete: its status, its pods, and a DELETE that
 * recreates the pod from the update revision (not ready for two lists). Records every request.
 */
class FakeApiServer {
  readonly requests: { method: string; path: string; authorization?: string }[] = [];
  readonly pods = new Map<string, FakePod>();
  generation = 2;
  observedGeneration = 2;
  updateRevision = "dpc-coordinator-new";
  /** Called on each DELETE with the pod's name (records the order with the Patroni events). */
  onDelete: (name: string) => void = () => undefined;
  server!: Server;
  url = "";

  constructor(private readonly tls: { cert: string; key: string }) {}

  async start() {
    this.server = createServer(this.tls, (req, res) => {
      const path = req.url ?? "";
      this.requests.push({ method: req.method ?? "", path, authorization: req.headers.authorization });
      const answer = (status: number, body: unknown) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
      if (req.headers.authorization !== `Bearer ${TOKEN}`) return answer(401, { kind: "Status", message: "Unauthorized" });
      if (req.method === "GET" && path === `/apis/apps/v1/namespaces/${NS}/statefulsets/${SET}`) {
        return answer(200, {
          metadata: { name: SET, generation: this.generation },
          spec: { selector: { matchLabels: SELECTOR } },
          status: { observedGeneration: this.observedGeneration, updateRevision: this.updateRevision, currentRevision: "dpc-coordinator-old" },
        });
      }
      if (req.method === "GET" && path === `/api/v1/namespaces/${NS}/pods?labelSelector=${encodeURIComponent(labelSelector(SELECTOR))}`) {
        const items = [...this.pods].map(([name, pod]) => {
          if (!pod.ready && --pod.readyAfter <= 0) pod.ready = true;
          return {
            metadata: { name, labels: { ...SELECTOR, "controller-revision-hash": pod.revision } },
            status: { podIP: `10.244.0.${name.slice(-1)}`, conditions: [{ type: "Ready", status: pod.ready ? "True" : "False" }] },
          };
        });
        return answer(200, { kind: "PodList", items });
      }
      const deleted = /^\/api\/v1\/namespaces\/dpc\/pods\/([a-z0-9-]+)$/.exec(path);
      if (req.method === "DELETE" && deleted && this.pods.has(deleted[1])) {
        this.onDelete(deleted[1]);
        this.pods.set(deleted[1], { revision: this.updateRevision, ready: false, readyAfter: 2 });
        return answer(200, { kind: "Pod", metadata: { name: deleted[1] } });
      }
      return answer(403, { kind: "Status", message: `${req.method} ${path} is forbidden: User "system:serviceaccount:dpc:dpc-rollout-step" cannot do that` });
    });
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.url = `https://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  stop() {
    return new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

let tls: ReturnType<typeof certificates>;
test.before(() => {
  tls = certificates();
});

async function withServer(pods: Record<string, string>, body: (api: FakeApiServer, access: ApiAccess) => Promise<void>) {
  const api = await new FakeApiServer(tls).start();
  for (const [name, revision] of Object.entries(pods)) api.pods.set(name, { revision, ready: true, readyAfter: 0 });
  try {
    await body(api, { url: api.url, token: TOKEN, ca: tls.ca });
  } finally {
    await api.stop();
  }
}

const noWait = { sleep: async () => undefined, settleMs: 0, pollMs: 0 };

test("the pods of a StatefulSet over HTTPS: the bearer token on every request, the server verified with the CA", async (t) => {
  await withServer({ "dpc-coordinator-0": "dpc-coordinator-old", "dpc-coordinator-1": "dpc-coordinator-new" }, async (api, access) => {
    const pods = await kubernetesPodApi(access, NS).pods(SET);
    t.deepEqual(pods, [
      { name: "dpc-coordinator-0", updated: false, ready: true },
      { name: "dpc-coordinator-1", updated: true, ready: true },
    ]);
    t.deepEqual(
      api.requests.map((r) => `${r.method} ${r.path}`),
      [
        `GET /apis/apps/v1/namespaces/dpc/statefulsets/dpc-coordinator`,
        `GET /api/v1/namespaces/dpc/pods?labelSelector=${encodeURIComponent("app.kubernetes.io/part-of=dpc,app.kubernetes.io/component=dpc-coordinator")}`,
      ],
    );
    t.true(api.requests.every((r) => r.authorization === `Bearer ${TOKEN}`));
    // Access as a function is read for every request: a token the kubelet replaced is used at once.
    let token = "expired";
    const rotating = kubernetesPodApi(() => ({ ...access, token }), NS);
    await t.throwsAsync(rotating.pods(SET), { instanceOf: KubernetesApiError });
    token = TOKEN;
    t.is((await rotating.pods(SET)).length, 2);
    // Without the CA the server's certificate is not trusted: no request reaches it.
    const before = api.requests.length;
    const untrusted = await t.throwsAsync(kubernetesPodApi({ ...access, ca: undefined }, NS).pods(SET));
    t.regex(untrusted!.message, /self[- ]signed certificate|unable to (get local issuer|verify)/i);
    t.is(api.requests.length, before);
    // A wrong token: the API's refusal, with its status, and never the token in the message.
    const refused = await t.throwsAsync(kubernetesPodApi({ ...access, token: "wrong" }, NS).pods(SET), { instanceOf: KubernetesApiError });
    t.is((refused as KubernetesApiError).status, 401);
    t.is(refused!.message, "GET statefulset dpc/dpc-coordinator: HTTP 401: Unauthorized");
  });
});

test("a StatefulSet whose controller has not observed its last change is read again, not trusted", async (t) => {
  await withServer({ "dpc-coordinator-0": "dpc-coordinator-old" }, async (api, access) => {
    api.observedGeneration = 1;
    const slept: number[] = [];
    const podApi = kubernetesPodApi(access, NS, {
      observePollMs: 500,
      sleep: async (ms) => {
        slept.push(ms);
        if (slept.length === 2) api.observedGeneration = 2;
      },
    });
    t.deepEqual(await podApi.pods(SET), [{ name: "dpc-coordinator-0", updated: false, ready: true }]);
    t.deepEqual(slept, [500, 500]);
    t.is(api.requests.filter((r) => r.path.includes("/statefulsets/")).length, 3);
    // Never observed: an error naming the generations, after the given number of reads.
    api.observedGeneration = 1;
    api.generation = 3;
    await t.throwsAsync(kubernetesPodApi(access, NS, { observeAttempts: 3, sleep: async () => undefined }).pods(SET), {
      message: "statefulset dpc/dpc-coordinator: its controller has not observed generation 3 (observed 1, updateRevision dpc-coordinator-new) after 3 reads",
    });
  });
});

test("a pod being deleted is neither updated nor ready; a refused DELETE names the pod and the API's message", async (t) => {
  t.deepEqual(podState({ metadata: { name: "p", labels: { "controller-revision-hash": "r" }, deletionTimestamp: "2026-12-01T00:00:00Z" }, status: { conditions: [{ type: "Ready", status: "True" }] } }, "r"), {
    name: "p",
    updated: false,
    ready: false,
  });
  await withServer({ "dpc-coordinator-0": "dpc-coordinator-old" }, async (_api, access) => {
    const error = await t.throwsAsync(kubernetesPodApi(access, NS).deletePod("dpc-etcd-0"), { instanceOf: KubernetesApiError });
    t.is((error as KubernetesApiError).status, 403);
    t.regex(error!.message, /^DELETE pod dpc\/dpc-etcd-0: HTTP 403: DELETE \/api\/v1\/namespaces\/dpc\/pods\/dpc-etcd-0 is forbidden/);
    t.false(error!.message.includes(TOKEN));
  });
});

test("kubernetesRollout through the API client: replicas' pods deleted first, one at a time, then the switchover, the former primary's pod last", async (t) => {
  const pods = { "dpc-coordinator-0": "dpc-coordinator-old", "dpc-coordinator-1": "dpc-coordinator-old", "dpc-coordinator-2": "dpc-coordinator-old" };
  await withServer(pods, async (api, access) => {
    const patroni = new FakePatroni({ 0: [member("dpc-coordinator-0", "leader"), member("dpc-coordinator-1", "replica"), member("dpc-coordinator-2", "sync_standby")] });
    api.onDelete = (name) => {
      const role = patroni.state.get(0)!.find((m) => m.name === name)!.role;
      // One pod at a time: every other pod is ready when one is deleted.
      const notReady = [...api.pods].filter(([other, pod]) => other !== name && !pod.ready).map(([other]) => other);
      patroni.events.push(`DELETE ${name} (${role})${notReady.length ? ` while ${notReady.join(", ")} not ready` : ""}`);
    };
    const report = await kubernetesRollout(kubernetesPodApi(access, NS), patroni, 0, SET, noWait);
    t.deepEqual(patroni.events, [
      "DELETE dpc-coordinator-1 (replica)",
      "DELETE dpc-coordinator-2 (sync_standby)",
      "pause",
      "switchover 0 dpc-coordinator-0->dpc-coordinator-2",
      "resume",
      "DELETE dpc-coordinator-0 (sync_standby)",
    ]);
    t.deepEqual(report.deleted, ["dpc-coordinator-1", "dpc-coordinator-2", "dpc-coordinator-0"]);
    t.deepEqual(report.switchovers.map((s) => [s.from, s.to, s.paused]), [["dpc-coordinator-0", "dpc-coordinator-2", true]]);
    // Only the three calls the rollout Role allows, each with the token.
    const calls = new Set(api.requests.map((r) => `${r.method} ${r.path.replace(/\?.*$/, "?…").replace(/dpc-coordinator-\d$/, "<pod>")}`));
    t.deepEqual([...calls].sort(), [
      "DELETE /api/v1/namespaces/dpc/pods/<pod>",
      "GET /api/v1/namespaces/dpc/pods?…",
      "GET /apis/apps/v1/namespaces/dpc/statefulsets/dpc-coordinator",
    ]);
    t.true(api.requests.every((r) => r.authorization === `Bearer ${TOKEN}`));
    t.true([...api.pods.values()].every((p) => p.revision === "dpc-coordinator-new" && p.ready));
  });
});

test("the router's pods one by one: the addresses of the ready pods a selector finds, by one list call with the token", async (t) => {
  await withServer({ "dpc-coordinator-0": "r", "dpc-coordinator-1": "r" }, async (api, access) => {
    api.pods.set("dpc-coordinator-2", { revision: "r", ready: false, readyAfter: 99 });
    t.deepEqual(await readyPodAddresses(access, NS, SELECTOR), [
      { name: "dpc-coordinator-0", ip: "10.244.0.0" },
      { name: "dpc-coordinator-1", ip: "10.244.0.1" },
    ]);
    t.deepEqual(api.requests.map((r) => [r.method, r.authorization]), [["GET", `Bearer ${TOKEN}`]]);
  });
});

// The Patroni probes the Kubernetes platform declares, sent as the kubelet sends them to a replica of
// the running local cluster while Patroni clones it from scratch: readiness must fail (the member
// cannot serve) while liveness passes (Patroni is alive and working), so that a clone of any length
// is never killed. /health, which the platform probed before, fails all along. The member is left
// running, streaming and ready.
import test from "ava";
import { patroniProbes, httpProbePasses } from "../../components/platform/kubernetes/probes.ts";
import { probeDuringClone } from "./_clone-probes.ts";
import { runningCluster } from "./context.ts";
import { quietClient } from "../../components/pg-client.ts";

const cluster = runningCluster();

test("probes while a replica is cloned: readiness false, liveness true, all the way; ready once streaming", async (t) => {
  const members = (await cluster.status())[0].members;
  // A replica of the coordinator group that is not the synchronous standby: the group keeps both.
  const replica = members.find((m) => m.role === "replica") ?? members.find((m) => m.role !== "leader")!;
  const node = cluster.node(replica.name);
  const leader = (await cluster.leader(0))!;
  // Slow the basebackup down to about 15 s for the data there is, so that it can be watched.
  const client = quietClient({ connectionString: cluster.nodeUrl(leader), connectionTimeoutMillis: 3000 });
  await client.connect();
  const bytes = Number((await client.query("SELECT sum(pg_database_size(datname))::bigint AS n FROM pg_database")).rows[0].n);
  await client.end();
  const maxRateKbps = Math.max(1024, Math.ceil(bytes / 1024 / 15));
  const probes = patroniProbes(cluster.config.kubernetesVolumeSize);

  const samples = await probeDuringClone(
    {
      host: cluster.addressing.postgres(node).connect,
      scheme: new URL(cluster.restUrl(node)).protocol === "https:" ? "https" : "http",
      configFile: cluster.layout.postgres(node).configFile,
      dataDir: cluster.layout.postgres(node).dataDir,
      stop: () => cluster.killNode(node),
      start: () => cluster.startPatroni(node),
    },
    probes,
    { maxRateKbps, timeoutMs: 240000 },
  );

  const cloning = samples.filter((s) => s.state === "creating replica");
  const answered = samples.filter((s) => s.state !== "unreachable");
  const last = samples[samples.length - 1];
  t.log(
    `${replica.name}: ${(bytes / 2 ** 20).toFixed(0)} MiB at ${maxRateKbps} kB/s; API up after ${answered[0]?.at.toFixed(1)} s; ` +
      `cloning for ${cloning.length > 0 ? (cloning[cloning.length - 1].at - cloning[0].at).toFixed(1) : 0} s (${cloning.length} samples): ` +
      `readiness ${[...new Set(cloning.map((s) => s.readiness))].join("/")}, liveness ${[...new Set(cloning.map((s) => s.liveness))].join("/")}, ` +
      `/health ${[...new Set(cloning.map((s) => s.health))].join("/")}; ready after ${last.at.toFixed(1)} s`,
  );
  t.true(cloning.length >= 5, "the clone was watched");
  for (const s of cloning) {
    t.is(s.readiness, 503, `readiness at ${s.at} s`);
    t.is(s.liveness, 200, `liveness at ${s.at} s`);
    t.is(s.health, 503, `/health at ${s.at} s`);
  }
  // Once Patroni's API answers, liveness never fails: no restart at any point of the clone.
  t.deepEqual(answered.filter((s) => !httpProbePasses(s.liveness)), []);
  t.true(httpProbePasses(last.readiness) && last.state === "running", JSON.stringify(last));
  // The group is whole again: the member streams from the leader.
  await cluster.waitGroupHealthy(0, 120000);
  t.is(await cluster.streamingReplicas(cluster.node((await cluster.leader(0))!.name)), cluster.topology.groups[0].length - 1);
});

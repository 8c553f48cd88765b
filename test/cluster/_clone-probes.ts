// The probes the Kubernetes platform declares for a Patroni member (components/platform/kubernetes/
// probes.ts), sent as the kubelet sends them (GET on the pod's address, a pass for 200-399) to a real
// Patroni while it clones a replica from scratch: stop the member, delete its data directory, start it
// again. The clone is slowed down (pg_basebackup --max-rate, in the member's own patroni.yml for the
// time of the test) so that it lasts long enough to be watched; the file is restored and the member
// restarted on it at the end.
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { parse, stringify } from "yaml";
import { httpProbePasses, type HttpProbe, type Probes } from "../../components/platform/kubernetes/probes.ts";
import { pollUntil, sleep } from "../../local/processes.ts";
import { request } from "../../components/https.ts";

/** One member of a running Patroni group, and how to stop and start it. */
export interface CloneTarget {
  /** Address the member's REST API listens on (the pod's address, for the kubelet). */
  host: string;
  /** Patroni's REST API scheme: https on a cluster with TLS (the kubelet then skips verification; we verify). */
  scheme: "http" | "https";
  configFile: string;
  dataDir: string;
  /** Stops Patroni and its postmaster. */
  stop(): void;
  /** Starts Patroni on configFile. */
  start(): void;
}

export interface Sample {
  /** Seconds since the member was started again. */
  at: number;
  /** Patroni's state from GET /patroni ("creating replica", "running", ...); "unreachable" while its API is down. */
  state: string;
  /** HTTP status of each probe's request (0: no answer) and of /health. */
  readiness: number;
  liveness: number;
  health: number;
}

async function status(url: string): Promise<number> {
  try {
    return (await request(url, { timeoutMs: 2000 })).status;
  } catch {
    return 0;
  }
}

async function patroniState(base: string): Promise<string> {
  try {
    const response = await request(`${base}/patroni`, { timeoutMs: 2000 });
    return (JSON.parse(response.text) as { state?: string }).state ?? "unknown";
  } catch {
    return "unreachable";
  }
}

const probeUrl = (target: CloneTarget, probe: HttpProbe) => `${target.scheme}://${target.host}:${probe.httpGet.port}${probe.httpGet.path}`;

/**
 * Re-clones `target` at `maxRateKbps` and samples its probes every `everyMs` until it is ready
 * (readiness passes and Patroni says "running"), at most `timeoutMs`. Restores its config and leaves
 * it running and ready.
 */
export async function probeDuringClone(
  target: CloneTarget,
  probes: Probes<HttpProbe>,
  options: { maxRateKbps: number; everyMs?: number; timeoutMs?: number },
): Promise<Sample[]> {
  const original = readFileSync(target.configFile, "utf8");
  const config = parse(original);
  config.postgresql.basebackup = [{ checkpoint: "fast" }, { "max-rate": `${options.maxRateKbps}k` }];
  const base = `${target.scheme}://${target.host}:${probes.livenessProbe.httpGet.port}`;
  const samples: Sample[] = [];
  try {
    writeFileSync(target.configFile, stringify(config, { lineWidth: 0 }));
    target.stop();
    await pollUntil(15000, 200, async () => ((await status(`${base}/liveness`)) === 0 ? true : undefined));
    await sleep(500);
    rmSync(target.dataDir, { recursive: true, force: true });
    const started = Date.now();
    target.start();
    const deadline = started + (options.timeoutMs ?? 180000);
    while (Date.now() < deadline) {
      const [readiness, liveness, health, state] = await Promise.all([
        status(probeUrl(target, probes.readinessProbe)),
        status(probeUrl(target, probes.livenessProbe)),
        status(`${base}/health`),
        patroniState(base),
      ]);
      samples.push({ at: (Date.now() - started) / 1000, state, readiness, liveness, health });
      if (httpProbePasses(readiness) && state === "running") break;
      await sleep(options.everyMs ?? 250);
    }
  } finally {
    // The member as rendered again: restore its file and restart it on it (its data is there now).
    writeFileSync(target.configFile, original);
    target.stop();
    await pollUntil(15000, 200, async () => ((await status(`${base}/liveness`)) === 0 ? true : undefined));
    await sleep(500);
    target.start();
    await pollUntil(120000, 500, async () => (httpProbePasses(await status(probeUrl(target, probes.readinessProbe))) ? true : undefined));
  }
  return samples;
}

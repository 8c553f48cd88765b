// Probes by meaning. Facts, from Patroni's docs (rest_api.rst) and source (patroni/api.py, 3.0.2 and 4.1):
// - GET /readiness: 200 when the node holds the leader key, or PostgreSQL is running (4.1+: and
//   streaming, within maximum_lag_on_failover); 503 while a replica is cloned, rewound or recovers.
// - GET /liveness: 200 while Patroni's HA loop has run within ttl (primary) or 2 x ttl (replica), and
//   always in pause mode. Clone, pg_rewind and recovery run in Patroni's async executor, so the loop,
//   and /liveness, go on while they do (test/cluster/kubernetes-probes.test.ts measures it).
// - GET /health: 200 only while PostgreSQL runs: never a liveness signal (a long clone would be
//   killed and started again, forever).
// - Patroni's REST API starts only once the DCS answers (Patroni.__init__ waits for etcd): the
//   startup probe covers that wait.
// etcd (3.5.3+, as kubeadm probes it): GET /health?serializable=true answers from the member itself,
// without quorum; GET /health needs a quorum read.
// Kubernetes counts an HTTP probe as passed for a status from 200 to 399.
import type { WorkloadGroup } from "../types.ts";
import { PORTS } from "../../render/types.ts";
import type { Kind } from "./naming.ts";

/**
 * An HTTP probe on the pod's own address, in the shape of a Kubernetes `Probe` (all times in seconds).
 * HTTPS: the kubelet speaks TLS and does not verify the certificate (Kubernetes docs, "Configure
 * Liveness, Readiness and Startup Probes": "the kubelet ... skips the certificate verification").
 */
export interface HttpProbe {
  httpGet: { path: string; port: number; scheme: "HTTP" | "HTTPS" };
  periodSeconds: number;
  timeoutSeconds: number;
  failureThreshold: number;
}

/** A command probe (Kubernetes `Probe` with `exec`). */
export interface ExecProbe {
  exec: { command: string[] };
  periodSeconds: number;
  timeoutSeconds: number;
  failureThreshold: number;
}

export interface Probes<P = HttpProbe | ExecProbe> {
  startupProbe: P;
  readinessProbe: P;
  livenessProbe: P;
}

/** The slowest basebackup rate the startup budget allows for, MiB/s (a slow network volume). */
export const BASEBACKUP_MIB_PER_SECOND = 20;
/** The startup budget never goes below this, seconds: time for Patroni to find etcd after a full restart. */
export const MIN_STARTUP_SECONDS = 600;

const UNITS: Record<string, number> = {
  "": 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50,
};

/** Bytes of a Kubernetes quantity such as `10Gi` or `500M` (the forms spec.ts admits). Throws on others. */
export function quantityBytes(quantity: string): number {
  const match = /^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$/.exec(quantity);
  if (!match) throw new Error(`not a Kubernetes quantity of bytes: ${JSON.stringify(quantity)}`);
  return Math.ceil(Number(match[1]) * UNITS[match[2] ?? ""]);
}

/**
 * Seconds a Patroni pod may take before its first answer from /liveness: a full basebackup of the
 * volume at BASEBACKUP_MIB_PER_SECOND, and at least MIN_STARTUP_SECONDS. The clone itself runs after
 * Patroni's API is up, watched by liveness; the budget is sized so that even a Patroni whose API
 * came up late is not killed in the middle of one.
 */
export function startupBudgetSeconds(volumeSize: string): number {
  const seconds = Math.ceil(quantityBytes(volumeSize) / (BASEBACKUP_MIB_PER_SECOND * 2 ** 20));
  return Math.max(MIN_STARTUP_SECONDS, seconds);
}

const http = (path: string, port: number, periodSeconds: number, failureThreshold: number, scheme: HttpProbe["httpGet"]["scheme"] = "HTTP"): HttpProbe => ({
  httpGet: { path, port, scheme },
  periodSeconds,
  timeoutSeconds: 5,
  failureThreshold,
});

/**
 * A Patroni member's probes: startup and liveness on /liveness (the Patroni process and its HA loop
 * are alive), readiness on /readiness (leader, or a replica that can serve). Period, timeout and
 * threshold of readiness and liveness as Patroni's docs show them (10 s, 5 s, 3 tries).
 */
export function patroniProbes(volumeSize: string): Probes<HttpProbe> {
  const period = 10;
  return {
    // Patroni's REST API speaks HTTPS only (restapi.certfile); its read endpoints need no client certificate.
    startupProbe: http("/liveness", PORTS.patroniRest, period, Math.ceil(startupBudgetSeconds(volumeSize) / period), "HTTPS"),
    readinessProbe: http("/readiness", PORTS.patroniRest, period, 3, "HTTPS"),
    livenessProbe: http("/liveness", PORTS.patroniRest, period, 3, "HTTPS"),
  };
}

/**
 * An etcd member's probes: startup and liveness on the member's own health (no quorum needed, so a
 * lost quorum restarts nobody); readiness on the quorum read (a rolling update waits for the member
 * to rejoin). Thresholds as kubeadm's etcd pod: 5 minutes to start, 8 failed checks to restart.
 */
export function etcdProbes(): Probes<HttpProbe> {
  const own = "/health?serializable=true";
  return {
    // The metrics listener: the client port demands a client certificate, which the kubelet has not.
    startupProbe: http(own, PORTS.etcdMetrics, 10, 30),
    readinessProbe: http("/health", PORTS.etcdMetrics, 5, 3),
    livenessProbe: http(own, PORTS.etcdMetrics, 10, 8),
  };
}

/** Any other process: its own healthcheck command (as docker runs it), after `startSeconds`. */
export function execProbes(group: Pick<WorkloadGroup, "healthcheck" | "startSeconds">): Probes<ExecProbe> {
  const probe = (periodSeconds: number, failureThreshold: number): ExecProbe => ({
    exec: { command: group.healthcheck },
    periodSeconds,
    timeoutSeconds: 3,
    failureThreshold,
  });
  return {
    startupProbe: probe(5, Math.ceil((group.startSeconds ?? 10) / 5) + 3),
    readinessProbe: probe(5, 3),
    livenessProbe: probe(10, 6),
  };
}

/** The probes of a group of the given kind. */
export function probesFor(kind: Kind, group: Pick<WorkloadGroup, "healthcheck" | "startSeconds">, volumeSize: string): Probes {
  if (kind === "database") return patroniProbes(volumeSize);
  if (kind === "etcd") return etcdProbes();
  return execProbes(group);
}

/** Whether the kubelet counts an HTTP probe's answer as a pass. */
export const httpProbePasses = (status: number): boolean => status >= 200 && status < 400;

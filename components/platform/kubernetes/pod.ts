// What every pod gets besides its command: a non-root user with fsGroup (Pod Security "restricted"),
// requests = limits, a memory-backed /dev/shm for PostgreSQL, and a grace period that covers a clean
// shutdown.
import type { ClusterConfig } from "../../spec.ts";
import { sharedMemoryMb } from "../../render/patroni.ts";
import type { WorkloadGroup } from "../types.ts";
import type { Kind } from "./naming.ts";

export interface RunAs {
  uid: number;
  gid: number;
}

/**
 * Users of the images that do not name one in their group: the database image's `postgres`
 * (configurable: the Citus image's is 999), `nobody` for etcd (its image has no user and writes only its
 * data directory), and the official HAProxy image's `haproxy` (uid 99).
 */
export function runAsFor(kind: Kind, group: Pick<WorkloadGroup, "runAs">, config: ClusterConfig): RunAs {
  if (group.runAs) return group.runAs;
  if (kind === "database") return { uid: config.kubernetesPostgresUid, gid: config.kubernetesPostgresGid };
  if (kind === "haproxy") return { uid: 99, gid: 99 };
  return { uid: 65534, gid: 65534 };
}

/**
 * The pod's securityContext: never root; volumes group-owned by `gid` through fsGroup, changed only
 * when the volume's root does not already match (no recursive chown of a database on every start).
 */
export function podSecurityContext(runAs: RunAs) {
  return {
    runAsNonRoot: true,
    runAsUser: runAs.uid,
    runAsGroup: runAs.gid,
    fsGroup: runAs.gid,
    fsGroupChangePolicy: "OnRootMismatch",
    seccompProfile: { type: "RuntimeDefault" },
  };
}

/** Every container's securityContext: what Pod Security "restricted" requires. */
export const containerSecurityContext = () => ({
  allowPrivilegeEscalation: false,
  capabilities: { drop: ["ALL"] },
});

/** CPU (cores) and memory (MiB) of the processes whose group names none; requests = limits. */
export const DEFAULT_RESOURCES: Record<Exclude<Kind, "database">, { cpus: number; memoryMb: number }> = {
  etcd: { cpus: 0.5, memoryMb: 512 },
  haproxy: { cpus: 0.5, memoryMb: 256 },
  pgbouncer: { cpus: 0.5, memoryMb: 256 },
  prometheus: { cpus: 0.5, memoryMb: 1024 },
  grafana: { cpus: 0.25, memoryMb: 512 },
  "postgres-exporter": { cpus: 0.1, memoryMb: 128 },
  "pgbouncer-exporter": { cpus: 0.1, memoryMb: 64 },
  other: { cpus: 0.25, memoryMb: 256 },
};

/** Kubernetes quantities of a group's resources: the group's own, or its kind's default. */
export function resourcesFor(kind: Kind, group: Pick<WorkloadGroup, "resources">): { cpu: string; memory: string } {
  const { cpus, memoryMb } = group.resources ?? DEFAULT_RESOURCES[kind === "database" ? "other" : kind];
  // Millicores: "0.5" is valid too, but the API server reads it back as "500m" (a diff on every up).
  const cpu = Number.isInteger(cpus) ? String(cpus) : `${Math.round(cpus * 1000)}m`;
  return { cpu, memory: `${memoryMb}Mi` };
}

/**
 * Size of a PostgreSQL pod's /dev/shm, MiB: the same as the Docker platform's shmSize
 * (sharedMemoryMb: maintenance_work_mem, which a parallel HNSW build allocates as one dynamic shared
 * memory segment, plus 64 MiB). A memory-backed emptyDir counts against the pod's memory limit,
 * which databaseMemoryMb sets (maintenance_work_mem is a quarter of it).
 */
export function shmSizeMb(config: ClusterConfig): number {
  return sharedMemoryMb(config);
}

/**
 * Seconds between SIGTERM and SIGKILL. PostgreSQL: kubernetesTerminationGraceSeconds, time for Patroni
 * to stop PostgreSQL cleanly (the shutdown checkpoint; otherwise crash recovery, or a rewind of a
 * former primary). etcd: a minute to hand over leadership. Others: Kubernetes' 30 s.
 */
export function terminationGraceSeconds(kind: Kind, config: ClusterConfig): number {
  if (kind === "database") return config.kubernetesTerminationGraceSeconds;
  if (kind === "etcd") return 60;
  return 30;
}

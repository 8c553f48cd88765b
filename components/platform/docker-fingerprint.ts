// The fingerprint of a Docker container's inputs that force its replacement: a container whose label
// carries another fingerprint than its wanted inputs is replaced by the next `pulumi up`, and the
// rolling replacement (components/rollout/replacement.ts) gives it its turn. Pure.
//
// Sources (terraform-provider-docker v4.5.0, which @pulumi/docker 5.1 bundles and 5.2 follows;
// internal/provider):
// - resource_docker_container.go, the schema: every field the program sets is ForceNew except
//   `restart` (line 230), `memory` (842), `memory_swap` (856), `destroy_grace_seconds` (827) and
//   `healthcheck` (1045, no ForceNew in its elements either); `labels` (833), `upload` (987),
//   `image` (141), `cpus` (1158) and `shm_size` (863) are ForceNew.
// - resource_docker_container_funcs.go, resourceDockerContainerUpdate (line 991): ContainerUpdate for
//   "restart", "max_retry_count", "cpu_shares", "memory", "memory_reservation", "cpu_set",
//   "memory_swap" and the block-IO limits (lines 1016-1019); nothing else changes in place.
import { createHmac } from "node:crypto";

/** The label that carries the fingerprint (a Docker label: ForceNew, so it changes only with a replacement). */
export const FINGERPRINT_LABEL = "dpc.inputs";

/**
 * Inputs left out: those the provider changes in place (ContainerUpdate) or that only it reads
 * (destroyGraceSeconds), and the labels (which carry the fingerprint). A change of only these must
 * not change the fingerprint: the label would turn an update into a replacement. `healthcheck` is
 * kept in: the provider's update stores a changed healthcheck without applying it (it is in neither
 * the ForceNew fields nor Update's list), so only a replacement applies one.
 */
export const IN_PLACE_FIELDS = ["restart", "memory", "memorySwap", "destroyGraceSeconds", "labels"] as const;

/** JSON with object keys sorted at every level: one text for equal values, whatever the key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/**
 * HMAC-SHA256 (hex) under `key` of the container's resolved inputs without IN_PLACE_FIELDS. The
 * inputs hold passwords (uploaded files): keyed, the label tells nothing about them to whoever reads
 * it without the key (a cluster secret). Throws on an empty key.
 */
export function containerFingerprint(inputs: Record<string, unknown>, key: string): string {
  if (!key) throw new Error("container fingerprint: empty key");
  const replacing = Object.fromEntries(Object.entries(inputs).filter(([name]) => !(IN_PLACE_FIELDS as readonly string[]).includes(name)));
  return createHmac("sha256", key).update(canonicalJson(replacing)).digest("hex");
}

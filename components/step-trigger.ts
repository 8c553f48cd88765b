// The trigger of a deploy step whose input holds passwords (the rotation and the schema Jobs on
// Kubernetes): what makes the Job run again when a password changes. It is written where anyone who
// reads the namespace (the Job's spec, the step's result ConfigMap) or Pulumi's state sees it in
// plain text, so a digest anyone can recompute would let them test guessed passwords offline against
// it. An HMAC keyed by a generated secret (cluster.ts: the `step-trigger-key` RandomPassword, kept
// secret in the state and never written into the cluster) changes with the passwords exactly as the
// plain digest did, and reveals nothing without the key. No Pulumi import.
import { createHmac } from "node:crypto";

/** Shortest key accepted, characters (the generated one has 32 letters and digits, about 190 bits). */
export const STEP_TRIGGER_KEY_MIN_LENGTH = 16;

/**
 * hex HMAC-SHA256 keyed by `key` over `parts` as JSON: equal parts give an equal trigger (a second
 * `up` with nothing changed runs nothing), any changed part another one. Throws on a short key.
 */
export function keyedTrigger(key: string, parts: unknown): string {
  if (typeof key !== "string" || key.length < STEP_TRIGGER_KEY_MIN_LENGTH) {
    throw new Error(`deploy step trigger: the key must have at least ${STEP_TRIGGER_KEY_MIN_LENGTH} characters`);
  }
  return createHmac("sha256", key).update(JSON.stringify(parts)).digest("hex");
}

// The stack's record of where its data lives, and the refusal of a change that would strand it.
//
// Configuration validation (spec.ts) sees only the new configuration. What it cannot see is what the
// stack deployed last time: a new `clusterName` (or platform, Kubernetes namespace, PostgreSQL
// major) gives every database node a new name, so `pulumi up` would create an empty cluster beside
// the old one and then delete the old one, or start a new major on an old data directory. The
// previous values are in Pulumi's state, and the one place a program sees them before anything
// changes is a provider's `check(olds, news)`: it runs first for its resource, in the preview and
// in the update, with the inputs stored in the state. So a small dynamic resource, `DataIdentity`,
// holds these values; its check refuses a change with a message naming the key, both values and the
// ways to proceed. Its name is fixed (`data-identity`, at the stack's root), so its URN stays the
// same whatever the cluster is called. After `pulumi destroy` it is gone, and the next `up` starts
// afresh, whatever the values: a deliberate new start.
//
// Like every dynamic provider here it is serialized with its closure and run by a plain Node host:
// its methods use nothing but the function below (no imports).
import * as pulumi from "@pulumi/pulumi";
import type { ClusterConfig } from "./spec.ts";

/** Resource name of the DataIdentity: fixed, so that its URN does not depend on the configuration. */
export const DATA_IDENTITY_NAME = "data-identity";

/** The keys whose change would leave the existing data behind (or unreadable). */
export const DATA_IDENTITY_KEYS = ["platform", "clusterName", "kubernetesNamespace", "postgresMajor", "workerGroups"] as const;
export type DataIdentityKey = (typeof DATA_IDENTITY_KEYS)[number];
export type DataIdentityInputs = Pick<ClusterConfig, DataIdentityKey>;

/**
 * The identity of the data a configuration deploys (kubernetesNamespace only counts on kubernetes).
 * workerGroups is no part of it on either platform: `up` rebalances onto new worker groups and
 * drains going ones (docker: components/scaling/worker-scaling.ts; kubernetes: the scaling Job,
 * components/scaling-run.ts). It stays a key, always 0, so that a deployed record needs no update;
 * a record of an older program holding the kubernetes count is never compared (identityChanges).
 */
export function dataIdentity(config: ClusterConfig): DataIdentityInputs {
  return {
    platform: config.platform,
    clusterName: config.clusterName,
    kubernetesNamespace: config.platform === "kubernetes" ? config.kubernetesNamespace : "",
    postgresMajor: config.postgresMajor,
    workerGroups: 0,
  };
}

/**
 * Every key whose value differs between the deployed identity (`olds`, from the state; empty on the
 * first deployment) and the new one, as Pulumi check failures `{ property, reason }`. Self-contained:
 * it is serialized into the dynamic provider.
 */
export function identityChanges(olds: Partial<Record<string, unknown>> | undefined, news: Record<string, unknown>): { property: string; reason: string }[] {
  if (!olds || Object.keys(olds).length === 0) return [];
  const why: Record<string, string> = {
    platform: "the data stays on the old platform and the new one starts empty",
    clusterName: "every volume, container and Patroni scope is named after it: the new names start an empty cluster and the old nodes would be deleted",
    kubernetesNamespace: "the claims live in the old namespace: the new one starts empty",
    postgresMajor: "a data directory is readable by its own PostgreSQL major only (an upgrade needs pg_upgrade, which this program does not run)",
  };
  return Object.keys(why)
    .filter((key) => key in olds && olds[key] !== news[key])
    .map((key) => ({
      property: key,
      reason:
        `${key}: deployed ${JSON.stringify(olds[key])}, now ${JSON.stringify(news[key])}; refused: ${why[key]}. ` +
        `Keep ${JSON.stringify(olds[key])}, or start over deliberately: \`pulumi destroy\` (the data volumes stay unless retainDataOnDestroy is false; see the README), then \`pulumi up\`, or use another stack`,
    }));
}

// Serialized: every method uses only identityChanges (see the top of this file).
export const dataIdentityProvider: pulumi.dynamic.ResourceProvider = {
  async check(olds: Record<string, unknown>, news: Record<string, unknown>) {
    return { inputs: news, failures: identityChanges(olds, news) };
  },
  async create(inputs: DataIdentityInputs) {
    return { id: DATA_IDENTITY_NAME, outs: inputs };
  },
  // check refused every change that matters; anything else (none today) is stored as it is.
  async update(_id: string, _olds: DataIdentityInputs, news: DataIdentityInputs) {
    return { outs: news };
  },
  // A record only: deleting it deletes nothing else.
  async delete() {},
};

/** The dynamic resource (type `pulumi-nodejs:dynamic/dpc:DataIdentity`). */
export class DataIdentity extends pulumi.dynamic.Resource {
  constructor(config: ClusterConfig, opts?: pulumi.CustomResourceOptions) {
    super(dataIdentityProvider, DATA_IDENTITY_NAME, { ...dataIdentity(config) }, opts, "dpc", "DataIdentity");
  }
}

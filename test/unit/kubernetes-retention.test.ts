// Kubernetes keeps the data by default: the claims and their namespace (deleting a namespace deletes
// its claims) are registered with retainOnDelete, and each StatefulSet states Kubernetes' own Retain
// policy for the claims of a deleted or scaled-down set.
import test from "ava";
import { TYPES, k8sName, loadKubernetesStack, resourceOptions, spec } from "./_kubernetes-stack.ts";
import { byType } from "./_pulumi-harness.ts";
import { optionsOf } from "./_resource-options.ts";

test.before(async () => {
  await loadKubernetesStack();
});

test("the namespace and every claim are retained when Pulumi deletes them", (t) => {
  const [namespace] = byType(TYPES.namespace);
  t.true(optionsOf(namespace.urn).retainOnDelete);
  const claims = byType(TYPES.claim);
  t.true(claims.length >= 18);
  for (const claim of claims) t.true(optionsOf(claim.urn).retainOnDelete, k8sName(claim));
  // The recorder of _kubernetes-stack.ts agrees.
  for (const claim of claims) t.true(resourceOptions.get(claim.urn)!.retainOnDelete);
});

test("every StatefulSet keeps its claims when deleted or scaled down", (t) => {
  for (const set of byType(TYPES.statefulSet)) {
    t.deepEqual(spec(set).persistentVolumeClaimRetentionPolicy, { whenDeleted: "Retain", whenScaled: "Retain" }, k8sName(set));
  }
});

test("the DataIdentity records the namespace on kubernetes", (t) => {
  const [identity] = byType("pulumi-nodejs:dynamic/dpc:DataIdentity");
  t.like(identity.inputs, { platform: "kubernetes", clusterName: "dpc", kubernetesNamespace: "dpc" });
});

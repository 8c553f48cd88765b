// The order `pulumi destroy` deletes custom resources in: a resource goes only once every resource
// that depends on it is gone, unrelated ones at the same time (Pulumi's engine: deletes are the
// reverse of the dependency graph, pkg/resource/graph DependencyGraph.DependingOn and the step
// executor's parallel deletes). The Docker test adapter stops containers this way, so etcd is still
// there while Patroni shuts down, as with a real destroy.
import type { RecordedRegistration } from "../support/pulumi-recording.ts";

type Node = Pick<RecordedRegistration, "urn" | "custom" | "dependencies">;

/**
 * Runs `remove` for every custom resource of `registrations`, each after `remove` finished for every
 * custom resource that depends on it, directly or through other resources (components count as the
 * link they are: a dependency on a component URN is followed to what depends on it). Resolves when
 * all are removed; rejects with the first failure (the ones already started still finish).
 */
export async function removeInReverseDependencyOrder<T extends Node>(registrations: T[], remove: (registration: T) => Promise<void>): Promise<void> {
  const dependents = new Map<string, T[]>();
  for (const r of registrations) {
    for (const dependency of new Set(r.dependencies)) {
      if (!dependents.has(dependency)) dependents.set(dependency, []);
      dependents.get(dependency)!.push(r);
    }
  }
  const done = new Map<string, Promise<void>>();
  const removed = (r: T, path: string[]): Promise<void> => {
    if (path.includes(r.urn)) throw new Error(`dependency cycle: ${[...path, r.urn].join(" -> ")}`);
    let promise = done.get(r.urn);
    if (!promise) {
      const before = (dependents.get(r.urn) ?? []).map((d) => removed(d, [...path, r.urn]));
      promise = Promise.all(before).then(() => (r.custom ? remove(r) : undefined));
      done.set(r.urn, promise);
    }
    return promise;
  };
  await Promise.all(registrations.map((r) => removed(r, [])));
}

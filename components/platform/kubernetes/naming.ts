// Names and addresses on Kubernetes, and the kind of process a group runs.
//
// - A group whose members are `<group>-<ordinal>` (etcd, the Patroni groups) is a StatefulSet `<group>`
//   behind the headless Service `<group>`: a member's address is its pod's DNS name,
//   `<member>.<group>.<namespace>.svc.cluster.local`, which follows the pod wherever it runs.
// - Any other member (HAProxy, PgBouncer, monitoring) is a Deployment behind a ClusterIP Service named
//   after the member: its address, `<member>.<namespace>.svc.cluster.local`, is the Service's virtual
//   IP, which stays the same while its pods are replaced, rescheduled or scaled.
// The renderers need these addresses before anything is deployed, so they follow from names alone.
import type { HostNaming } from "../../render/container.ts";
import type { WorkloadGroup } from "../types.ts";

const DNS_LABEL = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** The StatefulSet (and headless Service) of `<group>-<ordinal>`; undefined for any other name. */
export function statefulSetOf(member: string): string | undefined {
  return /^(.+)-\d+$/.exec(member)?.[1];
}

/** The Service a member's DNS name goes through: `<group>` for `<group>-<ordinal>`, else its own. */
export function memberService(member: string): string {
  return statefulSetOf(member) ?? member;
}

/**
 * The headless Service over a Deployment member's ready pods (`<member>-pods`): its DNS answer lists
 * every ready pod's address, for a caller that must reach each pod (the rotation's PgBouncer logins).
 */
export function podsService(member: string): string {
  return `${member}-pods`;
}

/** Member addresses: pod DNS names for StatefulSet members, the member's ClusterIP Service otherwise. */
export function kubernetesNaming(namespace: string): HostNaming {
  return {
    host: (member) => {
      const set = statefulSetOf(member);
      return set ? `${member}.${set}.${namespace}.svc.cluster.local` : `${member}.${namespace}.svc.cluster.local`;
    },
  };
}

/**
 * True when the group is a StatefulSet (members `<group>-0`, `<group>-1`, ...); false when its members
 * are Deployments. Throws when a member could not carry the DNS name kubernetesNaming gave it.
 */
export function isStatefulSet(group: Pick<WorkloadGroup, "name" | "members">): boolean {
  const ordinal = group.members.every((m, i) => m.name === `${group.name}-${i}`);
  for (const member of group.members) {
    const service = ordinal ? group.name : member.name;
    if (!DNS_LABEL.test(member.name) || memberService(member.name) !== service) {
      throw new Error(
        `kubernetes platform: group ${group.name}: member ${member.name}: allowed: a DNS label, either <group>-<ordinal> ` +
          `for every member (a StatefulSet) or a name not ending in -<number> (a Deployment of its own)`,
      );
    }
  }
  return ordinal;
}

/** What a group runs, as the platform's probes, budgets, users and network policies tell them apart. */
export type Kind =
  | "database"
  | "etcd"
  | "haproxy"
  | "pgbouncer"
  | "prometheus"
  | "grafana"
  | "postgres-exporter"
  | "pgbouncer-exporter"
  | "other";

const KINDS: readonly Kind[] = ["etcd", "haproxy", "pgbouncer", "prometheus", "grafana", "postgres-exporter", "pgbouncer-exporter"];

/**
 * The kind of a group, from its name as the components give it: `<cluster>-coordinator` and
 * `<cluster>-worker<N>` (spec.ts groupName) are Patroni groups; `<cluster>-etcd`, `<cluster>-haproxy`,
 * ... the rest (etcd.ts, router.ts, monitoring.ts). Anything else is "other": probed by its own
 * healthcheck, admitted by no network policy rule.
 */
export function kindOf(clusterName: string, groupName: string): Kind {
  const prefix = `${clusterName}-`;
  if (!groupName.startsWith(prefix)) return "other";
  const rest = groupName.slice(prefix.length);
  if (rest === "coordinator" || /^worker\d+$/.test(rest)) return "database";
  return KINDS.find((kind) => kind === rest) ?? "other";
}

/** Label of every pod with its kind: what the network policies select. */
export const KIND_LABEL = "dpc/kind";
/** Label an application pod carries (value: the cluster name) to reach PgBouncer and HAProxy's read-only port. */
export const CLIENT_LABEL = "dpc/client";

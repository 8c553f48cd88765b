// NetworkPolicy semantics (networking.k8s.io/v1, ingress only), enough to ask the registered policies
// who may open a TCP connection to whom: a pod selected by no policy admits everything; a selected pod
// admits a connection when one of its policies has a rule whose port and one of whose peers match.
// Peers: podSelector alone = pods of the policy's namespace; namespaceSelector (+ podSelector) = pods
// of matching namespaces; ipBlock = addresses outside the cluster (a client of a published Service).

export interface Source {
  namespace?: string;
  namespaceLabels?: Record<string, string>;
  labels?: Record<string, string>;
  /** An address outside the pod network. */
  ip?: string;
}

export interface Target {
  namespace: string;
  labels: Record<string, string>;
  port: number;
}

const matches = (selector: { matchLabels?: Record<string, string> } | undefined, labels: Record<string, string> = {}) =>
  Object.entries(selector?.matchLabels ?? {}).every(([k, v]) => labels[k] === v);

function inCidr(ip: string, cidr: string): boolean {
  const [base, bits] = cidr.split("/");
  const toInt = (a: string) => a.split(".").reduce((n, o) => n * 256 + Number(o), 0);
  const mask = Number(bits) === 0 ? 0 : 2 ** 32 - 2 ** (32 - Number(bits));
  return (toInt(ip) & mask) >>> 0 === (toInt(base) & mask) >>> 0;
}

function peerMatches(peer: any, policyNamespace: string, source: Source): boolean {
  if (peer.ipBlock) return source.ip !== undefined && inCidr(source.ip, peer.ipBlock.cidr);
  if (source.ip !== undefined) return false;
  const namespaceOk = peer.namespaceSelector ? matches(peer.namespaceSelector, source.namespaceLabels) : source.namespace === policyNamespace;
  return namespaceOk && matches(peer.podSelector, source.labels);
}

/** Whether `source` may connect to `target` under `policies` (NetworkPolicy manifests). */
export function admitted(policies: any[], source: Source, target: Target): boolean {
  const selecting = policies.filter((p) => p.metadata.namespace === target.namespace && matches(p.spec.podSelector, target.labels));
  if (selecting.length === 0) return true;
  return selecting.some((p) =>
    (p.spec.ingress ?? []).some(
      (rule: any) =>
        (rule.ports ?? [{ port: target.port }]).some((port: any) => port.port === target.port) &&
        (rule.from === undefined || rule.from.some((peer: any) => peerMatches(peer, p.metadata.namespace, source))),
    ),
  );
}

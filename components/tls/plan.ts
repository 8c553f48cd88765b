// Which certificates a cluster needs and which names each must carry. Pure: the Pulumi program and
// the local runner issue exactly this set (components/tls/issue.ts).
import { isIP } from "node:net";
import type { Topology } from "../spec.ts";
import type { Addressing } from "../render/types.ts";

/** One certificate to issue: its subject and subjectAltNames, and what it is used for. */
export interface CertificateSpec {
  /** Key in the issued set: a PostgreSQL node's or etcd member's name, "router" or "operator". */
  id: string;
  commonName: string;
  /** DNS subjectAltNames. */
  dnsNames: string[];
  /** IP subjectAltNames. */
  ipAddresses: string[];
  /** serverAuth: presents itself to clients that verify the name (verify-full). */
  server: boolean;
  /** clientAuth: authenticates to a server by certificate (etcd's --client-cert-auth). */
  client: boolean;
}

/** The certificate an operator's tools (etcdctl, the tests) present to etcd. */
export const OPERATOR_CERTIFICATE = "operator";
/** The certificate PgBouncer presents to clients. */
export const ROUTER_CERTIFICATE = "router";

const WILDCARD = new Set(["0.0.0.0", "::", ""]);

function names(commonName: string, addresses: string[]): Pick<CertificateSpec, "commonName" | "dnsNames" | "ipAddresses"> {
  const unique = [...new Set(addresses.filter((a) => !WILDCARD.has(a)))];
  return {
    commonName,
    dnsNames: unique.filter((a) => isIP(a) === 0),
    ipAddresses: unique.filter((a) => isIP(a) !== 0),
  };
}

export interface CertificatePlanOptions {
  /**
   * More names (DNS names or IP addresses) by which clients reach the router (PgBouncer and, through
   * it or directly, HAProxy), beyond the addressing's: the Docker host as `endpointHost` names it
   * (published ports), or a Kubernetes Service's shorter DNS names. They go into the router's
   * certificate and every coordinator node's (HAProxy passes TLS through to the coordinator primary).
   */
  routerNames?: string[];
  /**
   * Give every etcd member's certificate the loopback names too (127.0.0.1, localhost): a check run
   * inside the member's own container (etcdctl against https://127.0.0.1:2379) then verifies it like
   * any client. Only that process answers on its loopback.
   */
  etcdLoopback?: boolean;
}

/**
 * Every certificate of a cluster:
 * - each PostgreSQL node: one certificate for PostgreSQL, Patroni's REST API (both servers) and
 *   Patroni's etcd client, named by the node's addresses. A coordinator node's also names the router
 *   (HAProxy): PgBouncer reaches PostgreSQL through HAProxy in TCP mode, so the TLS session it
 *   verifies (verify-full against the host it dials, HAProxy's) ends at whichever coordinator node
 *   is primary now.
 * - each etcd member: server (clients, peers) and client (peers authenticate to each other), named by
 *   its address (and 127.0.0.1 on loopback: see below);
 * - the router: PgBouncer's certificate for clients (PgBouncer's and HAProxy's names);
 * - the operator: a client certificate for etcd, for people and tests on a machine that runs it.
 */
export function certificatePlan(topology: Topology, addressing: Addressing, options: CertificatePlanOptions = {}): CertificateSpec[] {
  const router = [addressing.haproxy.connect, addressing.haproxy.listen, addressing.pgbouncer.connect, addressing.pgbouncer.listen, ...(options.routerNames ?? [])];
  const specs: CertificateSpec[] = [];
  for (const node of topology.groups.flat()) {
    const self = addressing.postgres(node);
    const own = [self.connect, self.listen];
    specs.push({ id: node.name, ...names(self.connect, node.group === 0 ? [...own, ...router] : own), server: true, client: true });
  }
  for (const member of topology.etcd) {
    const self = addressing.etcd(member);
    // etcd checks a peer's client certificate against the address the connection comes from. Peers
    // on loopback addresses (the local runner) connect from 127.0.0.1, the kernel's source address there.
    const source = (self.connect.startsWith("127.") && isIP(self.connect) === 4) || options.etcdLoopback ? ["127.0.0.1"] : [];
    if (options.etcdLoopback) source.push("localhost");
    specs.push({ id: member.name, ...names(self.connect, [self.connect, self.listen, ...source]), server: true, client: true });
  }
  specs.push({ id: ROUTER_CERTIFICATE, ...names(addressing.pgbouncer.connect, router), server: true, client: false });
  specs.push({ id: OPERATOR_CERTIFICATE, commonName: OPERATOR_CERTIFICATE, dnsNames: [], ipAddresses: [], server: false, client: true });
  return specs;
}

// etcd member flags. Every member gets the full initial cluster list so that they form one cluster.
import type { EtcdMember, Topology } from "../spec.ts";
import type { TlsFilePaths } from "../tls/types.ts";
import { PORTS, type Addressing } from "./types.ts";

/**
 * Flags of one member. With `tls`: HTTPS for clients and peers, and both must present a certificate
 * signed by the cluster CA (--client-cert-auth, --peer-client-cert-auth), so a process without one
 * can neither read nor write Patroni's keys.
 */
export function etcdArgs(topology: Topology, member: EtcdMember, addressing: Addressing, dataDir: string, tls?: TlsFilePaths): string[] {
  const self = addressing.etcd(member);
  const scheme = tls ? "https" : "http";
  const initialCluster = topology.etcd
    .map((m) => `${m.name}=${scheme}://${addressing.etcd(m).connect}:${PORTS.etcdPeer}`)
    .join(",");
  const security = tls
    ? [
        `--cert-file=${tls.certFile}`,
        `--key-file=${tls.keyFile}`,
        `--trusted-ca-file=${tls.caFile}`,
        "--client-cert-auth",
        `--peer-cert-file=${tls.certFile}`,
        `--peer-key-file=${tls.keyFile}`,
        `--peer-trusted-ca-file=${tls.caFile}`,
        "--peer-client-cert-auth",
      ]
    : [];
  return [
    `--name=${member.name}`,
    `--data-dir=${dataDir}`,
    `--listen-client-urls=${scheme}://${self.listen}:${PORTS.etcdClient}`,
    `--advertise-client-urls=${scheme}://${self.connect}:${PORTS.etcdClient}`,
    `--listen-peer-urls=${scheme}://${self.listen}:${PORTS.etcdPeer}`,
    `--initial-advertise-peer-urls=${scheme}://${self.connect}:${PORTS.etcdPeer}`,
    `--initial-cluster=${initialCluster}`,
    `--initial-cluster-token=${topology.scope}-etcd`,
    "--initial-cluster-state=new",
    ...security,
    // Patroni needs only the v3 API; quicker elections on a small cluster.
    "--heartbeat-interval=100",
    "--election-timeout=1000",
    "--auto-compaction-retention=1",
  ];
}

/** Client endpoints, as Patroni and etcdctl take them (https when the cluster has TLS). */
export function etcdEndpoints(topology: Topology, addressing: Addressing, tls = false): string[] {
  return topology.etcd.map((m) => `${tls ? "https" : "http"}://${addressing.etcd(m).connect}:${PORTS.etcdClient}`);
}

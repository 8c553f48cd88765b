// etcd member flags. Every member gets the full initial cluster list so that they form one cluster.
import type { EtcdMember, Topology } from "../spec.ts";
import { PORTS, type Addressing } from "./types.ts";

export function etcdArgs(topology: Topology, member: EtcdMember, addressing: Addressing, dataDir: string): string[] {
  const self = addressing.etcd(member);
  const initialCluster = topology.etcd
    .map((m) => `${m.name}=http://${addressing.etcd(m).connect}:${PORTS.etcdPeer}`)
    .join(",");
  return [
    `--name=${member.name}`,
    `--data-dir=${dataDir}`,
    `--listen-client-urls=http://${self.listen}:${PORTS.etcdClient}`,
    `--advertise-client-urls=http://${self.connect}:${PORTS.etcdClient}`,
    `--listen-peer-urls=http://${self.listen}:${PORTS.etcdPeer}`,
    `--initial-advertise-peer-urls=http://${self.connect}:${PORTS.etcdPeer}`,
    `--initial-cluster=${initialCluster}`,
    `--initial-cluster-token=${topology.scope}-etcd`,
    "--initial-cluster-state=new",
    // Patroni needs only the v3 API; quicker elections on a small cluster.
    "--heartbeat-interval=100",
    "--election-timeout=1000",
    "--auto-compaction-retention=1",
  ];
}

/** Client endpoints, as Patroni and etcdctl take them. */
export function etcdEndpoints(topology: Topology, addressing: Addressing): string[] {
  return topology.etcd.map((m) => `http://${addressing.etcd(m).connect}:${PORTS.etcdClient}`);
}

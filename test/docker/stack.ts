// The stack the docker test deploys: sized for 2 cores (a coordinator group of 3 and 2 worker groups
// of 2, as the local stack), published ports and a subnet that clash with nothing on this machine
// (the local cluster uses 127.0.0.1:5000/5001/6432/7000).
import { randomBytes } from "node:crypto";
import type { PasswordName } from "../../components/cluster.ts";

export const PROJECT = "distributed-postgres-cluster";

export const DOCKER_TEST_STACK: Record<string, string> = {
  platform: "docker",
  clusterName: "dpctest",
  postgresMajor: "17",
  database: "vectors",
  coordinatorMembers: "3",
  workerGroups: "2",
  workerMembers: "2",
  etcdMembers: "3",
  synchronousMode: "on",
  databaseCpus: "1",
  databaseMemoryMb: "512",
  poolSize: "20",
  networkSubnet: "172.29.213.0/24",
  pgbouncerPort: "16432",
  haproxyReadWritePort: "15000",
  haproxyReadOnlyPort: "15001",
  prometheusPort: "19090",
  grafanaPort: "13000",
  // The test dials the published ports at 127.0.0.1: the router's (and the coordinator nodes')
  // certificates must name that address for verify-full.
  endpointHost: "127.0.0.1",
};

/** Passwords as secret stack config would give them (the test needs them to connect). */
export function testPasswords(): Record<PasswordName, string> {
  const one = () => randomBytes(18).toString("base64url");
  return { superuser: one(), replication: one(), rewind: one(), restApi: one(), app: one() };
}

// Bad input at `up`: each fails with one clear message naming the cause, and `down` cleans up.
// Runs with no cluster up (test/cluster/harness.ts runs this file first).
import test from "ava";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { createServer, type Server } from "node:net";
import { join, resolve } from "node:path";
import { LocalCluster, LocalClusterError } from "../../local/cluster.ts";
import { etcdAddress, routerAddress } from "../../local/layout.ts";
import { processesUnder } from "../../local/processes.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const STACK_FILE = join(ROOT, "Pulumi.local.yaml");

function listen(host: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen({ host, port }, () => resolve(server));
  });
}

test("a port already taken: `up` names the port and what needed it, starts nothing, and `down` leaves nothing", async (t) => {
  const stateDir = join(ROOT, ".state", "test-port-taken");
  const blocker = await listen(routerAddress(), 6432);
  try {
    const up = spawnSync("npx", ["tsx", "local/cli.ts", "up", "--state", stateDir], { cwd: ROOT, encoding: "utf8" });
    t.is(up.status, 1);
    t.true(up.stderr.includes(`port ${routerAddress()}:6432 (PgBouncer) is already in use by another process`), up.stderr);
    t.deepEqual(processesUnder(stateDir), []);
  } finally {
    blocker.close();
  }
  const down = spawnSync("npx", ["tsx", "local/cli.ts", "down", "--purge", "--state", stateDir], { cwd: ROOT, encoding: "utf8" });
  t.is(down.status, 0, down.stderr);
});

test("etcd not reachable at `up`: the message names etcd, the member and its log; `down` stops what was started", async (t) => {
  const stateDir = join(ROOT, ".state", "test-etcd-down");
  const cluster = new LocalCluster({ stackFile: STACK_FILE, stateDir, log: () => undefined });
  await cluster.down(true);
  // A file where etcd's data directory should be: the member cannot start, so etcd never has a quorum.
  mkdirSync(cluster.paths.nodeDir(cluster.topology.etcd[0].name), { recursive: true });
  writeFileSync(join(cluster.paths.nodeDir(cluster.topology.etcd[0].name), "data"), "not a directory");
  const error = await t.throwsAsync(cluster.up(), { instanceOf: LocalClusterError });
  const { portsStillTaken } = await cluster.down(true);
  t.log(error!.message);
  const member = `member dpc-etcd-0 (https://${etcdAddress(cluster.topology.etcd[0])}:2379) exited before it became healthy`;
  t.true(error!.message.startsWith(`etcd is not reachable: ${member}`), error!.message);
  t.deepEqual(portsStillTaken, []);
  t.deepEqual(processesUnder(stateDir), []);
});

test("invalid stack config: `up` lists every bad key with what is allowed, and starts nothing", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "dpc-bad-config-"));
  const stackFile = join(dir, "Pulumi.bad.yaml");
  writeFileSync(stackFile, "config:\n  distributed-postgres-cluster:etcdMembers: '2'\n  distributed-postgres-cluster:workerGroups: '0'\n");
  const error = t.throws(() => new LocalCluster({ stackFile, stateDir: join(dir, "state"), log: () => undefined }));
  rmSync(dir, { recursive: true, force: true });
  t.regex(error!.message, /etcdMembers: got 2; allowed: an odd number/);
  t.regex(error!.message, /workerGroups: got "0"; allowed: an integer from 1 to 64|workerGroups: got 0/);
});

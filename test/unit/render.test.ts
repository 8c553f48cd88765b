// The pure renderers, checked on parsed output (YAML, INI, flag lists), for the shipped (docker,
// Citus) rendering of the seed-sized cluster.
import test from "ava";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { parse as parseIni } from "ini";
import { parseClusterConfig, planTopology, type ClusterConfig } from "../../components/spec.ts";
import { groupSynchronousMode, renderCluster, renderPgbouncerUserlist, POOLER_AUTH_QUERY, PORTS, ROLES, type ClusterSecrets } from "../../components/render/index.ts";
import { placeholderCertificates } from "../../components/shipped-files.ts";
import { containerAddressing, containerLayout, dockerHostNaming } from "../../components/render/container.ts";

const secrets: ClusterSecrets = { superuser: "su-pw", replication: "repl-pw", rewind: "rewind-pw", restApi: "rest-pw", app: "app-pw" };
const pooler = { lookup: "lookup-pw", admin: "admin-pw", monitor: "monitor-pw" };

function renderSeed(overrides: Record<string, unknown> = {}) {
  const config = parseClusterConfig(overrides);
  const topology = planTopology(config);
  const addressing = containerAddressing(config, topology, dockerHostNaming);
  const rendered = renderCluster(config, topology, addressing, containerLayout(config), secrets, pooler, placeholderCertificates(config));
  return { config, topology, addressing, rendered };
}

type Patroni = any;
function patroniFiles(rendered: ReturnType<typeof renderSeed>["rendered"]): { name: string; group: number; yml: Patroni }[] {
  return rendered.postgres.map(({ node, files }) => {
    const file = files.find((f) => f.path.endsWith("/patroni.yml"));
    if (!file) throw new Error(`no patroni.yml for ${node.name}`);
    return { name: node.name, group: node.group, yml: parseYaml(file.content) };
  });
}

test("one patroni.yml per node: citus groups 0..6, one scope, its own name, the cluster database", (t) => {
  const { config, rendered } = renderSeed();
  const nodes = patroniFiles(rendered);
  t.is(nodes.length, 3 + 6 * 2);
  t.deepEqual([...new Set(nodes.map((n) => n.yml.citus.group))].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6]);
  t.deepEqual(nodes.filter((n) => n.yml.citus.group === 0).length, 3);
  for (const n of nodes) {
    t.is(n.yml.citus.group, n.group);
    t.is(n.yml.name, n.name);
    t.is(n.yml.citus.database, config.database);
  }
  t.deepEqual([...new Set(nodes.map((n) => n.yml.scope))], [config.clusterName]);
});

test("connect addresses are unique per node, and none is PgBouncer or HAProxy", (t) => {
  const { addressing, rendered } = renderSeed();
  const nodes = patroniFiles(rendered);
  const postgresAddresses = nodes.map((n) => n.yml.postgresql.connect_address as string);
  const restAddresses = nodes.map((n) => n.yml.restapi.connect_address as string);
  t.is(new Set(postgresAddresses).size, nodes.length);
  t.is(new Set(restAddresses).size, nodes.length);
  for (const n of nodes) {
    t.is(n.yml.postgresql.connect_address, `${n.name}:${PORTS.postgres}`);
    t.is(n.yml.restapi.connect_address, `${n.name}:${PORTS.patroniRest}`);
  }
  const routers = [addressing.pgbouncer.connect, addressing.haproxy.connect];
  for (const address of [...postgresAddresses, ...restAddresses]) {
    t.false(routers.includes(address.split(":")[0]), `${address} points at the router`);
  }
});

test("pg_hba: scram-sha-256 from the cluster network only, no trust or md5", (t) => {
  const { config, rendered } = renderSeed({ networkSubnet: "10.42.0.0/16" });
  for (const n of patroniFiles(rendered)) {
    const hba: string[] = n.yml.postgresql.pg_hba;
    const hostLines = hba.filter((line) => line.startsWith("host"));
    t.true(hostLines.length >= 2);
    for (const line of hostLines) {
      const fields = line.split(/\s+/);
      t.is(fields[3], config.networkSubnet, line);
      t.is(fields[4], "scram-sha-256", line);
    }
    t.true(hostLines.some((line) => line.split(/\s+/)[1] === "replication" && line.split(/\s+/)[2] === ROLES.replication));
    t.false(hba.some((line) => /\b(trust|md5|password)\s*$/.test(line)), hba.join("; "));
    // A cluster-wide parameter: in the dynamic configuration a new cluster bootstraps with.
    t.is(n.yml.bootstrap.dcs.postgresql.parameters.password_encryption, "scram-sha-256");
  }
});

test("synchronous mode: on/off written as booleans; quorum left to Patroni 4, which bootstraps a Citus cluster in quorum mode", (t) => {
  const cases: [ClusterConfig["synchronousMode"], unknown][] = [["on", true], ["off", false]];
  for (const [mode, expected] of cases) {
    for (const n of patroniFiles(renderSeed({ synchronousMode: mode }).rendered)) t.is(n.yml.bootstrap.dcs.synchronous_mode, expected);
  }
  // Patroni 4.0.7's validator rejects the value "quorum" (it accepts it at run time); a live cluster
  // test reads "quorum" back from Patroni's dynamic configuration.
  const { config, rendered } = renderSeed({ synchronousMode: "quorum" });
  for (const n of patroniFiles(rendered)) {
    const members = n.group === 0 ? config.coordinatorMembers : config.workerMembers;
    if (members === 2) t.is(n.yml.bootstrap.dcs.synchronous_mode, true, `${n.name}: a group of 2 runs "on" (one standby either way)`);
    else {
      t.false("synchronous_mode" in n.yml.bootstrap.dcs, n.name);
      t.is(n.yml.bootstrap.dcs.synchronous_node_count, members - 1, `${n.name}: every standby acknowledges, so any survivor may take over alone`);
    }
    t.deepEqual(n.yml.citus.group, n.group);
  }
});

test("groupSynchronousMode: quorum in a group of two is on; other sizes and modes unchanged", (t) => {
  t.is(groupSynchronousMode("quorum", 2), "on");
  t.is(groupSynchronousMode("quorum", 3), "quorum");
  t.is(groupSynchronousMode("on", 2), "on");
  t.is(groupSynchronousMode("off", 2), "off");
});

test("Patroni gets every etcd member, the credentials, and loop timings that satisfy its rule", (t) => {
  const { config, rendered } = renderSeed();
  for (const n of patroniFiles(rendered)) {
    t.deepEqual(n.yml.etcd3.hosts, ["dpc-etcd-0:2379", "dpc-etcd-1:2379", "dpc-etcd-2:2379"]);
    t.is(n.yml.restapi.authentication.password, secrets.restApi);
    t.is(n.yml.postgresql.authentication.superuser.password, secrets.superuser);
    t.is(n.yml.postgresql.authentication.replication.password, secrets.replication);
    t.is(n.yml.postgresql.authentication.rewind.password, secrets.rewind);
    const dcs = n.yml.bootstrap.dcs;
    t.is(dcs.ttl, config.patroniTtl);
    t.true(dcs.loop_wait + 2 * dcs.retry_timeout <= dcs.ttl);
  }
  // Files with passwords, and private keys, are marked secret; the post-bootstrap script holds none.
  for (const { files } of rendered.postgres) {
    for (const f of files) {
      const holdsPassword = Object.values(secrets).some((s) => f.content.includes(s));
      t.is(f.secret, holdsPassword || f.content.startsWith("PLACEHOLDER-key-"), f.path);
    }
  }
});

/** haproxy.cfg as sections: header line -> its indented lines. */
function haproxySections(cfg: string): Map<string, string[]> {
  const sections = new Map<string, string[]>();
  let current: string[] = [];
  for (const line of cfg.split("\n")) {
    if (!line.trim() || line.trim().startsWith("#")) continue;
    if (!/^\s/.test(line)) sections.set(line.trim(), (current = []));
    else current.push(line.trim());
  }
  return sections;
}

test("haproxy: read-write to the coordinator primary by /primary, read-only by /replica, checks on 8008", (t) => {
  const { config, topology, rendered } = renderSeed();
  // haproxy.cfg and the CA its checks verify Patroni's certificates with.
  t.deepEqual(rendered.haproxy.map((f) => f.path), ["/etc/dpc/haproxy.cfg", "/etc/dpc/tls/ca.crt"]);
  const sections = haproxySections(rendered.haproxy[0].content);
  const primary = sections.get("listen coordinator_primary");
  const replicas = sections.get("listen coordinator_replicas");
  t.truthy(primary);
  t.truthy(replicas);
  const coordinator = topology.groups[0].map((n) => n.name);
  const expectations: [string[], string, number][] = [
    [primary!, "/primary", PORTS.haproxyReadWrite],
    [replicas!, `/replica?lag=${config.readOnlyMaxLagBytes}`, PORTS.haproxyReadOnly],
  ];
  for (const [lines, check, port] of expectations) {
    t.true(lines.includes(`bind 0.0.0.0:${port}`));
    t.true(lines.includes(`option httpchk GET ${check}`));
    const servers = lines.filter((l) => l.startsWith("server "));
    t.deepEqual(servers.map((l) => l.split(/\s+/)[1]), coordinator);
    for (const server of servers) {
      const [, name, address] = server.split(/\s+/);
      t.is(address, `${name}:${PORTS.postgres}`);
      t.true(server.includes(`check port ${PORTS.patroniRest}`), server);
    }
  }
  // Read-write checked every 250 ms (a switchover's pause waits for the old primary to be out
  // there), read-only every second; both out after 2 failed checks, in after 1 good one.
  const defaults = (lines: string[]) => lines.find((l) => l.startsWith("default-server "));
  t.regex(defaults(primary!)!, /^default-server inter 250ms fastinter 250ms downinter 250ms fall 2 rise 1 on-marked-down shutdown-sessions/);
  t.regex(defaults(replicas!)!, /^default-server inter 1s fastinter 250ms downinter 500ms fall 2 rise 1 on-marked-down shutdown-sessions/);
  // Only the coordinator group is routed: no worker appears.
  t.false(rendered.haproxy[0].content.includes("worker"));
  t.is(config.coordinatorMembers, coordinator.length);
});

test("pgbouncer: transaction pooling, scram auth, pointed at HAProxy's read-write port; application roles by auth_query, the auth file holds generated credentials only", (t) => {
  const { config, addressing, rendered } = renderSeed();
  const iniFile = rendered.pgbouncer.find((f) => f.path.endsWith("pgbouncer.ini"))!;
  const userlist = rendered.pgbouncer.find((f) => f.path.endsWith("userlist.txt"))!;
  t.false(iniFile.secret);
  t.true(userlist.secret);
  const ini = parseIni(iniFile.content);
  t.is(ini.pgbouncer.pool_mode, "transaction");
  t.is(ini.pgbouncer.auth_type, "scram-sha-256");
  t.is(ini.pgbouncer.auth_file, userlist.path);
  t.is(Number(ini.pgbouncer.listen_port), PORTS.pgbouncer);
  t.is(Number(ini.pgbouncer.default_pool_size), config.poolSize);
  const target = Object.fromEntries((ini.databases[config.database] as string).split(/\s+/).map((kv) => kv.split("=")));
  t.is(target.host, addressing.haproxy.connect);
  t.is(Number(target.port), PORTS.haproxyReadWrite);
  t.is(target.dbname, config.database);
  const users = userlist.content.trim().split("\n").map((line) => line.split(" ").map((q) => JSON.parse(q)));
  t.deepEqual(users, [[ROLES.poolerLookup, pooler.lookup], [ROLES.poolerAdmin, pooler.admin], [ROLES.monitor, pooler.monitor]]);
  // None of the rotated passwords is in any of PgBouncer's files.
  for (const file of rendered.pgbouncer) for (const password of Object.values(secrets)) t.false(file.content.includes(password), `${file.path} holds no cluster password`);
  // Every other login is looked up in the application database, as the lookup role.
  t.is(ini.pgbouncer.auth_user, ROLES.poolerLookup);
  t.is(ini.pgbouncer.auth_query, POOLER_AUTH_QUERY);
  t.is(ini.pgbouncer.auth_dbname, config.database);
  // The PgBouncer exporter reads statistics as the monitoring role, not as an admin; the admin is PgBouncer's own.
  t.is(ini.pgbouncer.admin_users, ROLES.poolerAdmin);
  t.is(ini.pgbouncer.stats_users, ROLES.monitor);
  t.deepEqual(renderPgbouncerUserlist({ ...pooler, monitor: "m0n" }).trim().split("\n").at(-1), `"${ROLES.monitor}" "m0n"`);
});

test("etcd: every member's initial cluster lists all members by peer URL (https), names per member, client certificates demanded", (t) => {
  const { topology, rendered } = renderSeed({ etcdMembers: 5 });
  t.is(rendered.etcd.length, 5);
  const expectedCluster = topology.etcd.map((m) => `${m.name}=https://${m.name}:${PORTS.etcdPeer}`).sort();
  for (const { member, args } of rendered.etcd) {
    const flags = new Map(args.map((a) => [a.slice(2, a.indexOf("=")), a.slice(a.indexOf("=") + 1)] as [string, string]));
    t.is(flags.get("name"), member.name);
    t.deepEqual(flags.get("initial-cluster")!.split(",").sort(), expectedCluster);
    t.is(flags.get("initial-advertise-peer-urls"), `https://${member.name}:${PORTS.etcdPeer}`);
    t.is(flags.get("advertise-client-urls"), `https://${member.name}:${PORTS.etcdClient}`);
    t.true(args.includes("--client-cert-auth") || args.includes("--client-cert-auth=true"), "client-cert-auth");
    t.true(args.includes("--peer-client-cert-auth") || args.includes("--peer-client-cert-auth=true"), "peer-client-cert-auth");
    t.is(flags.get("initial-cluster-state"), "new");
  }
  const dataDirs = rendered.etcd.map(({ args }) => args.find((a) => a.startsWith("--data-dir=")));
  t.is(new Set(dataDirs).size, 1, "each member has its own volume, so the same path inside it");
});

test("`npm run render` writes every file of the dev stack: one patroni.yml per node, citus groups 0..6, placeholders", (t) => {
  const out = mkdtempSync(join(tmpdir(), "dpc-render-"));
  try {
    execFileSync(process.execPath, ["--import=tsx", "scripts/render.ts", "--stack", "dev", "--out", out], { stdio: "pipe" });
    const nodeDirs = readdirSync(out).filter((d) => existsSync(join(out, d, "patroni.yml")));
    t.is(nodeDirs.length, 15);
    const groups = nodeDirs.map((d) => parseYaml(readFileSync(join(out, d, "patroni.yml"), "utf8")).citus.group as number);
    t.deepEqual([...new Set(groups)].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6]);
    for (const member of ["dpc-etcd-0", "dpc-etcd-1", "dpc-etcd-2"]) t.true(existsSync(join(out, member, "etcd.args")));
    t.true(existsSync(join(out, "dpc-haproxy", "haproxy.cfg")));
    t.true(existsSync(join(out, "dpc-pgbouncer", "pgbouncer.ini")));
    const userlist = readFileSync(join(out, "dpc-pgbouncer", "userlist.txt"), "utf8");
    // Generated credentials only: no password of the stack's config (the application's is looked up).
    t.regex(userlist, /PLACEHOLDER-generated-pooler-lookup-password/);
    t.notRegex(userlist, /PLACEHOLDER-appPassword|PLACEHOLDER-superuserPassword/);
    t.is(statSync(join(out, "dpc-pgbouncer", "userlist.txt")).mode & 0o777, 0o600);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

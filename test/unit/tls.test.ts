// The certificate plan (names each certificate needs), issuing, and the TLS parts of the rendering.
import test from "ava";
import { X509Certificate } from "node:crypto";
import { parse } from "yaml";
import { DEFAULT_CONFIG, planTopology } from "../../components/spec.ts";
import { containerAddressing, dockerHostNaming } from "../../components/render/container.ts";
import { renderCluster, type ClusterSecrets } from "../../components/render/index.ts";
import {
  certificatePlan,
  checkSpec,
  createCertificateAuthority,
  issueClusterCertificates,
  OPERATOR_CERTIFICATE,
  ROUTER_CERTIFICATE,
} from "../../components/tls/index.ts";
import { localAddressing, localLayout, localPaths } from "../../local/layout.ts";

const config = { ...DEFAULT_CONFIG, coordinatorMembers: 2, workerGroups: 1, workerMembers: 2, etcdMembers: 1, postgresMajor: 15 };
const topology = planTopology(config);
const secrets: ClusterSecrets = { superuser: "s", replication: "r", rewind: "w", restApi: "p", app: "a" };

test("every coordinator node's certificate names the router too (PgBouncer verifies the name it dials, HAProxy's); workers' do not", (t) => {
  const addressing = containerAddressing(config, topology, dockerHostNaming);
  const plan = certificatePlan(topology, addressing);
  const byId = new Map(plan.map((s) => [s.id, s]));
  const coordinator = byId.get(topology.groups[0][0].name)!;
  t.deepEqual(coordinator.dnsNames, [topology.groups[0][0].name, `${topology.scope}-haproxy`, `${topology.scope}-pgbouncer`]);
  t.deepEqual(coordinator.ipAddresses, [], "0.0.0.0 (listen) is no name");
  t.true(coordinator.server && coordinator.client);
  t.deepEqual(byId.get(topology.groups[1][0].name)!.dnsNames, [topology.groups[1][0].name]);
  t.deepEqual(byId.get(ROUTER_CERTIFICATE)!.dnsNames, [`${topology.scope}-haproxy`, `${topology.scope}-pgbouncer`]);
  t.like(byId.get(OPERATOR_CERTIFICATE), { server: false, client: true });
  t.is(plan.length, topology.groups.flat().length + topology.etcd.length + 2);
});

test("on loopback, certificates carry IP names, and etcd's 127.0.0.1 (the source address of its peers)", (t) => {
  const plan = certificatePlan(topology, localAddressing(topology));
  const etcd = plan.find((s) => s.id === topology.etcd[0].name)!;
  t.deepEqual(etcd.dnsNames, []);
  t.true(etcd.ipAddresses.includes("127.0.0.1"));
  // (A coordinator node's names the router, which is 127.0.0.1 on the default network.)
  const worker = plan.find((s) => s.id === topology.groups[1][0].name)!;
  t.deepEqual(worker.ipAddresses, [localAddressing(topology).postgres(topology.groups[1][0]).connect]);
});

test("issued certificates verify against the CA, carry the planned names, and a second issue keeps them", (t) => {
  const authority = createCertificateAuthority("dpc");
  const plan = certificatePlan(topology, localAddressing(topology));
  const first = issueClusterCertificates(authority, plan, undefined);
  const ca = new X509Certificate(first.ca);
  t.true(ca.ca);
  for (const spec of plan) {
    const cert = new X509Certificate(first.certificates[spec.id].cert);
    t.true(cert.verify(ca.publicKey), spec.id);
    for (const ip of spec.ipAddresses) t.is(cert.checkIP(ip), ip, `${spec.id} names ${ip}`);
    t.false(cert.ca);
  }
  const second = issueClusterCertificates(authority, plan, first);
  t.deepEqual(second, first, "idempotent: nothing reissued");
  // A changed name is reissued, the others kept.
  const changed = plan.map((s) => (s.id === ROUTER_CERTIFICATE ? { ...s, dnsNames: ["router.example"] } : s));
  const third = issueClusterCertificates(authority, changed, first);
  t.not(third.certificates[ROUTER_CERTIFICATE].cert, first.certificates[ROUTER_CERTIFICATE].cert);
  t.is(third.certificates[OPERATOR_CERTIFICATE].cert, first.certificates[OPERATOR_CERTIFICATE].cert);
  // Another CA: everything reissued.
  const other = issueClusterCertificates(createCertificateAuthority("dpc"), plan, first);
  t.not(other.certificates[OPERATOR_CERTIFICATE].cert, first.certificates[OPERATOR_CERTIFICATE].cert);
});

test("a bad certificate spec is refused with a message naming the field and value", (t) => {
  const error = t.throws(() => checkSpec({ id: "a b", commonName: "x", dnsNames: [], ipAddresses: [], server: false, client: true }));
  t.regex(error!.message, /certificate id: "a b" is not allowed/);
  const noName = t.throws(() => checkSpec({ id: "web", commonName: "x", dnsNames: [], ipAddresses: [], server: true, client: false }));
  t.regex(noName!.message, /certificate web: a server certificate needs at least one DNS name or IP address/);
});

test("with TLS in the layout: hostssl only, ssl on, verify-full for replication, rewind and Citus, HTTPS REST, etcd with client-cert auth", (t) => {
  const addressing = localAddressing(topology);
  const layout = localLayout(config, localPaths("/state"));
  const certificates = issueClusterCertificates(createCertificateAuthority("dpc"), certificatePlan(topology, addressing), undefined);
  const rendered = renderCluster(config, topology, addressing, layout, secrets, { lookup: "l", admin: "a", monitor: "m" }, certificates);
  const node = rendered.postgres[0];
  const tls = layout.postgres(node.node).tls!;
  const patroni = parse(node.files.find((f) => f.path.endsWith("patroni.yml"))!.content);
  t.deepEqual(patroni.postgresql.pg_hba.filter((l: string) => !l.startsWith("local")), [
    "hostssl replication replicator 127.0.0.0/8 scram-sha-256",
    "hostssl all all 127.0.0.0/8 scram-sha-256",
  ]);
  t.like(patroni.postgresql.parameters, { ssl: "on", ssl_cert_file: tls.certFile, ssl_key_file: tls.keyFile, ssl_ca_file: tls.caFile });
  t.regex(patroni.postgresql.parameters["citus.node_conninfo"], new RegExp(`^sslmode=verify-full sslrootcert=${tls.caFile} `));
  for (const role of ["superuser", "replication", "rewind"]) t.like(patroni.postgresql.authentication[role], { sslmode: "verify-full", sslrootcert: tls.caFile });
  t.like(patroni.restapi, { certfile: tls.certFile, keyfile: tls.keyFile, cafile: tls.caFile });
  t.like(patroni.etcd3, { protocol: "https", cacert: tls.caFile, cert: tls.certFile, key: tls.keyFile });
  // The node's key is a secret file; its certificate is the one issued for it.
  t.like(node.files.find((f) => f.path === tls.keyFile), { secret: true, content: certificates.certificates[node.node.name].key });
  const etcd = rendered.etcd[0];
  t.true(etcd.args.includes("--client-cert-auth") && etcd.args.includes("--peer-client-cert-auth"));
  t.true(etcd.args.every((a) => !a.includes("http://")));
  const haproxy = rendered.haproxy[0].content;
  t.regex(haproxy, /check-ssl verify required ca-file \/state\/router\/ca\.crt/);
  t.regex(haproxy, /server \S+ 127\.\d+\.2\.1:5432 check port 8008 verifyhost 127\.\d+\.2\.1/);
  const ini = rendered.pgbouncer[0].content;
  t.regex(ini, /^client_tls_sslmode = require$/m);
  t.regex(ini, /^server_tls_sslmode = verify-full$/m);
  t.like(rendered.pgbouncer.find((f) => f.path.endsWith("server.key")), { secret: true, content: certificates.certificates[ROUTER_CERTIFICATE].key });
});

test("TLS in the layout without certificates is refused, naming what is missing", (t) => {
  const addressing = localAddressing(topology);
  const layout = localLayout(config, localPaths("/state"));
  const error = t.throws(() => renderCluster(config, topology, addressing, layout, secrets, { lookup: "l", admin: "a", monitor: "m" }));
  t.regex(error!.message, /certificates: none given, but the layout turns TLS on/);
});

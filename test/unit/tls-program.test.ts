// TLS on the Pulumi side (issue 14), under Pulumi's mocks for the dev stack (docker): every database
// container gets its own certificate naming the addresses it is dialled at, chained to the stack's CA;
// no private key in any input outside a secret; the TLS settings in what the containers receive; the
// outputs. Then the certificates resource's provider (components/certificates-issue.ts): idempotent,
// a new node gets a new certificate while the others stay, a supplied CA is used and validated.
import test from "ava";
import { X509Certificate, createPrivateKey } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import { parse as parseYaml } from "yaml";
import { CERTIFICATES_TYPE, byName, byType, containers, devStackConfig, key, plainStrings, registrations, reveal, settled, valueOf } from "./_pulumi-harness.ts";
import { certificatesDiff, issueCertificatesState } from "../../components/certificates-issue.ts";
import { certificatePlan, createCertificateAuthority } from "../../components/tls/index.ts";
import { certificateAuthorityProblems, parseClusterConfig, planTopology } from "../../components/spec.ts";
import { containerAddressing, containerRouterNames, dockerHostNaming } from "../../components/render/container.ts";

type Upload = { file: string; content: string; permissions: string; owner?: string };

let stack: Record<string, any>;
test.before(async () => {
  pulumi.runtime.setAllConfig(devStackConfig());
  stack = await import("../../index.ts");
  await valueOf(stack.appConnectionString);
  await settled();
});

const uploadsOf = (name: string) => (reveal(byName(name).inputs.uploads) ?? []) as Upload[];
const upload = (name: string, file: string) => uploadsOf(name).find((u) => u.file === file)!;
const DATABASE = /^dpc-(coordinator|worker\d+)-\d+$/;
const sans = (cert: X509Certificate) => (cert.subjectAltName ?? "").split(", ");

test("every database container has its own certificate, chained to the stack's CA, naming the addresses it is dialled at", async (t) => {
  const caPem = await valueOf(stack.caCertificate);
  const ca = new X509Certificate(caPem);
  t.true(ca.ca);
  const nodes = containers().filter((c) => DATABASE.test(c.name));
  t.is(nodes.length, 15);
  const serials = new Set<string>();
  for (const node of nodes) {
    const cert = new X509Certificate(upload(node.name, "/etc/dpc/tls/server.crt").content);
    t.true(cert.verify(ca.publicKey), `${node.name}: signed by the stack's CA`);
    t.true(cert.checkPrivateKey(createPrivateKey(upload(node.name, "/etc/dpc/tls/server.key").content)), `${node.name}: its own key`);
    t.is(upload(node.name, "/etc/dpc/tls/ca.crt").content, caPem);
    serials.add(cert.serialNumber);
    // Its hostname: what Patroni's connect_address, pg_dist_node, replication and HAProxy dial.
    t.true(sans(cert).includes(`DNS:${node.name}`), `${node.name}: ${cert.subjectAltName}`);
    // A coordinator node also names the router (PgBouncer dials HAProxy, which passes TLS through),
    // and endpointHost, at which the Schema step and clients reach HAProxy's published ports.
    const router = ["DNS:dpc-haproxy", "DNS:dpc-pgbouncer", "DNS:localhost"];
    const coordinator = node.name.startsWith("dpc-coordinator-");
    for (const name of router) t.is(sans(cert).includes(name), coordinator, `${node.name}: ${name}`);
    t.is(upload(node.name, "/etc/dpc/tls/server.key").permissions, "0600");
  }
  t.is(serials.size, nodes.length, "one certificate per node");
});

test("etcd members, PgBouncer and Prometheus get their own certificates; HAProxy the CA alone", async (t) => {
  const ca = await valueOf(stack.caCertificate);
  for (const member of ["dpc-etcd-0", "dpc-etcd-1", "dpc-etcd-2"]) {
    const cert = new X509Certificate(upload(member, "/etc/dpc/tls/server.crt").content);
    t.deepEqual(sans(cert).sort(), [`DNS:${member}`, "DNS:localhost", "IP Address:127.0.0.1"].sort());
    t.is(upload(member, "/etc/dpc/tls/server.key").permissions, "0600");
  }
  const router = new X509Certificate(upload("dpc-pgbouncer", "/etc/dpc/tls/server.crt").content);
  t.true(sans(router).includes("DNS:localhost") && sans(router).includes("DNS:dpc-pgbouncer"), router.subjectAltName);
  t.deepEqual([upload("dpc-pgbouncer", "/etc/dpc/tls/server.key").permissions, upload("dpc-pgbouncer", "/etc/dpc/tls/server.key").owner], ["0600", "70"]);
  t.deepEqual(uploadsOf("dpc-haproxy").map((u) => u.file).sort(), ["/etc/dpc/haproxy.cfg", "/etc/dpc/tls/ca.crt"]);
  t.is(upload("dpc-haproxy", "/etc/dpc/tls/ca.crt").content, ca);
  t.is(upload("dpc-prometheus", "/etc/dpc/tls/client.key").permissions, "0600");
});

test("no private key in any input outside a secret, and the certificates' state keeps keys secret", (t) => {
  const leaks = registrations.flatMap((r) => plainStrings(r.inputs).filter((s) => s.includes("PRIVATE KEY")).map(() => `${r.type} ${r.name}`));
  t.deepEqual(leaks, []);
  const [resource] = byType(CERTIFICATES_TYPE);
  t.deepEqual(resource.additionalSecretOutputs, ["authority", "caKey", "certificates"]);
  // The scan is not vacuous: keys travel to the containers, inside secrets.
  t.true(JSON.stringify(registrations.map((r) => r.inputs)).includes("PRIVATE KEY"));
});

test("the rendered files turn TLS on everywhere: PostgreSQL, pg_hba, Patroni REST and etcd client, etcd, HAProxy, PgBouncer", (t) => {
  for (const node of containers().filter((c) => DATABASE.test(c.name))) {
    const yml = parseYaml(upload(node.name, "/etc/dpc/patroni.yml").content);
    t.is(yml.postgresql.parameters.ssl, "on", node.name);
    const tcp = (yml.postgresql.pg_hba as string[]).filter((line) => !line.startsWith("local "));
    t.true(tcp.length > 0 && tcp.every((line) => line.startsWith("hostssl ")), tcp.join("\n"));
    t.like(yml.restapi, { certfile: "/etc/dpc/tls/server.crt", keyfile: "/etc/dpc/tls/server.key", cafile: "/etc/dpc/tls/ca.crt" });
    t.like(yml.etcd3, { protocol: "https", cacert: "/etc/dpc/tls/ca.crt", cert: "/etc/dpc/tls/server.crt" });
    t.regex(yml.postgresql.parameters["citus.node_conninfo"], /^sslmode=verify-full sslrootcert=\/etc\/dpc\/tls\/ca\.crt /);
    // The container's healthcheck talks HTTPS to its own Patroni, verified by the CA and its name.
    t.regex((node.inputs.healthcheck as { tests: string[] }).tests.join(" "), /curl .*--cacert \/etc\/dpc\/tls\/ca\.crt --resolve "\$\(hostname\):8008:127\.0\.0\.1" "https:\/\/\$\(hostname\):8008\/health"/);
  }
  for (const member of ["dpc-etcd-0", "dpc-etcd-1", "dpc-etcd-2"]) {
    const argv = byName(member).inputs.entrypoints as string[];
    for (const flag of ["--client-cert-auth", "--peer-client-cert-auth", "--cert-file=/etc/dpc/tls/server.crt", `--advertise-client-urls=https://${member}:2379`]) {
      t.true(argv.includes(flag), `${member}: ${flag}`);
    }
    t.deepEqual((byName(member).inputs.healthcheck as { tests: string[] }).tests.slice(1, 3), ["/usr/local/bin/etcdctl", "--endpoints=https://127.0.0.1:2379"]);
  }
  const haproxy = upload("dpc-haproxy", "/etc/dpc/haproxy.cfg").content;
  t.regex(haproxy, /default-server .* check-ssl verify required ca-file \/etc\/dpc\/tls\/ca\.crt/);
  const ini = upload("dpc-pgbouncer", "/etc/dpc/pgbouncer.ini").content;
  for (const line of ["client_tls_sslmode = require", "server_tls_sslmode = verify-full", "client_tls_cert_file = /etc/dpc/tls/server.crt"]) {
    t.true(ini.split("\n").includes(line), line);
  }
});

test("outputs: the CA certificate plain, the verify-full connection string secret", async (t) => {
  t.false(await pulumi.isSecret(stack.caCertificate));
  t.regex(await valueOf(stack.caCertificate), /^-----BEGIN CERTIFICATE-----\r?\n/);
  t.true(await pulumi.isSecret(stack.appConnectionStringVerifyFull));
  t.regex(await valueOf(stack.appConnectionStringVerifyFull), /^postgresql:\/\/app:[^@]+@localhost:6432\/vectors\?sslmode=verify-full$/);
});

// The provider's own functions, as `pulumi up` runs them (create, then diff/update on later runs).
const config = parseClusterConfig({ workerGroups: 2 });
const planFor = (c = config) => {
  const topology = planTopology(c);
  return certificatePlan(topology, containerAddressing(c, topology, dockerHostNaming), { routerNames: containerRouterNames(c, topology), etcdLoopback: true });
};

test("the certificates provider: the same plan changes nothing; a new node gets a certificate, the others stay", (t) => {
  const first = issueCertificatesState({ name: "dpc", plan: planFor() });
  t.false(certificatesDiff(first, { name: "dpc", plan: planFor() }).changes);
  t.deepEqual(issueCertificatesState({ name: "dpc", plan: planFor() }, first), first, "an update with the same plan issues nothing");
  const bigger = planFor(parseClusterConfig({ workerGroups: 3 }));
  t.true(certificatesDiff(first, { name: "dpc", plan: bigger }).changes);
  const second = issueCertificatesState({ name: "dpc", plan: bigger }, first);
  t.is(second.ca, first.ca, "the same CA");
  t.is(second.caKey, first.caKey);
  const added = Object.keys(second.certificates).filter((id) => !(id in first.certificates));
  t.deepEqual(added.sort(), ["dpc-worker3-0", "dpc-worker3-1"]);
  for (const id of Object.keys(first.certificates)) t.is(second.certificates[id].cert, first.certificates[id].cert, id);
});

test("the certificates provider: a supplied CA signs everything and is kept; a CA the resource created stays across updates", (t) => {
  const supplied = createCertificateAuthority("corp");
  const state = issueCertificatesState({ name: "dpc", plan: planFor(), authority: supplied });
  t.is(state.ca, supplied.cert);
  const ca = new X509Certificate(supplied.cert);
  for (const [id, c] of Object.entries(state.certificates)) t.true(new X509Certificate(c.cert).verify(ca.publicKey), id);
  // Switching to a supplied CA is a change; its certificates are all new.
  const own = issueCertificatesState({ name: "dpc", plan: planFor() });
  t.true(certificatesDiff(own, { name: "dpc", plan: planFor(), authority: supplied }).changes);
  const switched = issueCertificatesState({ name: "dpc", plan: planFor(), authority: supplied }, own);
  t.is(switched.ca, supplied.cert);
  for (const id of Object.keys(own.certificates)) t.not(switched.certificates[id].cert, own.certificates[id].cert, id);
});

test("a supplied CA is validated: both keys or neither, a CA, valid, its own RSA key; messages name the key, never its value", (t) => {
  const good = createCertificateAuthority("corp");
  const other = createCertificateAuthority("other");
  t.deepEqual(certificateAuthorityProblems(undefined, undefined), []);
  t.deepEqual(certificateAuthorityProblems(good.cert, good.key), []);
  t.regex(certificateAuthorityProblems(good.cert, undefined)[0], /^tlsCaKey: missing while tlsCaCertificate is set; allowed: both/);
  t.regex(certificateAuthorityProblems("garbage", good.key)[0], /^tlsCaCertificate: got a value that is not a PEM X\.509 certificate/);
  t.regex(certificateAuthorityProblems(good.cert, "garbage")[0], /^tlsCaKey: got a value that is not a PEM private key/);
  t.regex(certificateAuthorityProblems(good.cert, other.key)[0], /^tlsCaKey: got a key that does not belong to tlsCaCertificate/);
  t.regex(certificateAuthorityProblems(good.cert, good.key, new Date(Date.now() + 4000 * 86_400_000))[0], /^tlsCaCertificate: got a certificate that expired/);
  // A service certificate is no CA.
  const leaf = issueCertificatesState({ name: "dpc", plan: planFor(), authority: good }).certificates["router"];
  t.true(certificateAuthorityProblems(leaf.cert, leaf.key).some((p) => /^tlsCaCertificate: got a certificate for .* that is not a CA/.test(p)));
  for (const problem of certificateAuthorityProblems(good.cert, other.key)) t.false(problem.includes("PRIVATE KEY"));
  t.is(key("tlsCaKey"), "distributed-postgres-cluster:tlsCaKey");
});

test("tlsRouterNames: more names for the router's certificate (a LoadBalancer's address, an alias), validated", (t) => {
  const withNames = parseClusterConfig({ tlsRouterNames: "db.example.com, 203.0.113.10" });
  const router = planFor(withNames).find((s) => s.id === "router")!;
  t.true(router.dnsNames.includes("db.example.com"));
  t.true(router.ipAddresses.includes("203.0.113.10"));
  t.true(planFor(withNames).find((s) => s.id === "dpc-coordinator-0")!.dnsNames.includes("db.example.com"));
  t.throws(() => parseClusterConfig({ tlsRouterNames: "db.example.com,bad name" }), { message: /tlsRouterNames: got "bad name"; allowed: DNS names or IPv4 addresses/ });
});

test("the certificates provider renews a certificate within 30 days of its end, and only that one", (t) => {
  const state = issueCertificatesState({ name: "dpc", plan: planFor() });
  const [id] = Object.keys(state.certificates);
  const validTo = Date.parse(new X509Certificate(state.certificates[id].cert).validTo);
  const early = new Date(validTo - 31 * 86_400_000);
  const late = new Date(validTo - 29 * 86_400_000);
  t.false(certificatesDiff(state, { name: "dpc", plan: planFor() }, early).changes);
  t.true(certificatesDiff(state, { name: "dpc", plan: planFor() }, late).changes);
  // All were issued together, so all are renewed together; the CA stays.
  const renewed = issueCertificatesState({ name: "dpc", plan: planFor() }, state, late);
  t.is(renewed.ca, state.ca);
  for (const [name, c] of Object.entries(renewed.certificates)) t.not(c.cert, state.certificates[name].cert, name);
  t.true(Date.parse(new X509Certificate(renewed.certificates[id].cert).validTo) > validTo);
});

// Issuing the cluster's CA and certificates: RSA keys from node:crypto (native, fast), X.509
// certificates built and signed with node-forge (pure JS, so a Pulumi dynamic provider can run it).
import { generateKeyPairSync, randomBytes } from "node:crypto";
import forge from "node-forge";
import type { CertificateSpec } from "./plan.ts";
import type { CertificateAuthority, ClusterCertificates, IssuedCertificate } from "./types.ts";

const { pki, md } = forge;

export interface IssueOptions {
  /** Validity start; now by default (tests pin it). */
  now?: Date;
  /** Days a service certificate is valid; 825 by default (the longest browsers and most tools accept). */
  certificateDays?: number;
  /** Days the CA is valid; 3650 by default. */
  caDays?: number;
}

const DAY_MS = 86_400_000;

function rsaKey(): { privateKeyPem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
    publicKeyEncoding: { type: "spki", format: "pem" },
  });
  return { privateKeyPem: privateKey, publicKeyPem: publicKey };
}

/** A positive serial of 16 random bytes (RFC 5280: positive, at most 20 octets). */
function serial(): string {
  const bytes = randomBytes(16);
  bytes[0] &= 0x7f;
  return bytes.toString("hex");
}

function validity(cert: forge.pki.Certificate, now: Date, days: number): void {
  // An hour back: clocks of the machines that check it may lag a little.
  cert.validity.notBefore = new Date(now.getTime() - 3_600_000);
  cert.validity.notAfter = new Date(now.getTime() + days * DAY_MS);
}

/** A new self-signed CA certificate and its key, for one cluster (`name`: its common name). */
export function createCertificateAuthority(name: string, options: IssueOptions = {}): CertificateAuthority {
  if (name.length === 0 || name.length > 64) throw new Error(`certificate authority name: ${JSON.stringify(name)} is not allowed; expected 1-64 characters`);
  const key = rsaKey();
  const cert = pki.createCertificate();
  cert.publicKey = pki.publicKeyFromPem(key.publicKeyPem);
  cert.serialNumber = serial();
  validity(cert, options.now ?? new Date(), options.caDays ?? 3650);
  const subject = [{ name: "commonName", value: `${name} cluster CA` }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: "basicConstraints", cA: true, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  cert.sign(pki.privateKeyFromPem(key.privateKeyPem), md.sha256.create());
  return { cert: pki.certificateToPem(cert), key: key.privateKeyPem };
}

/**
 * Validates a spec before anything is signed.
 * @throws Error naming the certificate, the field, the value and what is allowed.
 */
export function checkSpec(spec: CertificateSpec): void {
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(spec.id)) throw new Error(`certificate id: ${JSON.stringify(spec.id)} is not allowed; expected 1-64 of A-Z a-z 0-9 . _ -`);
  if (spec.commonName.length === 0 || spec.commonName.length > 64) {
    throw new Error(`certificate ${spec.id}: commonName ${JSON.stringify(spec.commonName)} is not allowed; expected 1-64 characters`);
  }
  if (!spec.server && !spec.client) throw new Error(`certificate ${spec.id}: neither server nor client; expected at least one use`);
  if (spec.server && spec.dnsNames.length + spec.ipAddresses.length === 0) {
    throw new Error(`certificate ${spec.id}: a server certificate needs at least one DNS name or IP address; none given`);
  }
}

/** One certificate for `spec`, signed by `authority`. */
export function issueCertificate(authority: CertificateAuthority, spec: CertificateSpec, options: IssueOptions = {}): IssuedCertificate {
  checkSpec(spec);
  const caCert = pki.certificateFromPem(authority.cert);
  const key = rsaKey();
  const cert = pki.createCertificate();
  cert.publicKey = pki.publicKeyFromPem(key.publicKeyPem);
  cert.serialNumber = serial();
  validity(cert, options.now ?? new Date(), options.certificateDays ?? 825);
  cert.setSubject([{ name: "commonName", value: spec.commonName }]);
  cert.setIssuer(caCert.subject.attributes);
  const altNames = [
    ...spec.dnsNames.map((value) => ({ type: 2, value })),
    ...spec.ipAddresses.map((ip) => ({ type: 7, ip })),
  ];
  cert.setExtensions([
    { name: "basicConstraints", cA: false, critical: true },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    { name: "extKeyUsage", serverAuth: spec.server, clientAuth: spec.client },
    ...(altNames.length > 0 ? [{ name: "subjectAltName", altNames }] : []),
    { name: "subjectKeyIdentifier" },
    { name: "authorityKeyIdentifier", keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(pki.privateKeyFromPem(authority.key), md.sha256.create());
  return { cert: pki.certificateToPem(cert), key: key.privateKeyPem, issuedFor: JSON.stringify(spec) };
}

/**
 * The certificates of a plan: those already issued for the same spec are kept, the others (new
 * nodes, changed names) issued now. Certificates of ids no longer in the plan are dropped.
 * Idempotent: a second call with its own result issues nothing.
 */
export function issueClusterCertificates(
  authority: CertificateAuthority,
  plan: CertificateSpec[],
  existing: ClusterCertificates | undefined,
  options: IssueOptions = {},
): ClusterCertificates {
  const ids = plan.map((s) => s.id);
  const duplicate = ids.find((id, i) => ids.indexOf(id) !== i);
  if (duplicate !== undefined) throw new Error(`certificate plan: id ${JSON.stringify(duplicate)} appears twice; ids must be unique`);
  const reuse = existing?.ca === authority.cert ? existing.certificates : {};
  const certificates: Record<string, IssuedCertificate> = {};
  for (const spec of plan) {
    const previous = reuse[spec.id];
    certificates[spec.id] = previous && previous.issuedFor === JSON.stringify(spec) ? previous : issueCertificate(authority, spec, options);
  }
  return { ca: authority.cert, certificates };
}

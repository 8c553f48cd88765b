// The local cluster's certificates: issued once by components/tls (the code path the Pulumi program
// uses) and kept in the state directory, root only (tls/, mode 0700; keys 0600). Each service gets
// copies of its own files in its directory, owned by postgres, when the rendered files are written.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { certificatePlan, createCertificateAuthority, issueClusterCertificates, OPERATOR_CERTIFICATE } from "../components/tls/index.ts";
import type { CertificateAuthority, ClusterCertificates, TlsFilePaths } from "../components/tls/index.ts";
import type { Addressing } from "../components/render/types.ts";
import type { Topology } from "../components/spec.ts";

export interface LocalTlsFiles {
  dir: string;
  /** The CA certificate, for clients: `sslrootcert`, PGSSLROOTCERT, etcdctl --cacert. */
  caFile: string;
  caKeyFile: string;
  /** Every issued certificate (JSON, keys included). */
  storeFile: string;
  /** The operator's client certificate, for etcdctl and the tests. */
  operator: TlsFilePaths;
}

export function localTlsFiles(stateDir: string): LocalTlsFiles {
  const dir = join(stateDir, "tls");
  return {
    dir,
    caFile: join(dir, "ca.crt"),
    caKeyFile: join(dir, "ca.key"),
    storeFile: join(dir, "certificates.json"),
    operator: { caFile: join(dir, "ca.crt"), certFile: join(dir, `${OPERATOR_CERTIFICATE}.crt`), keyFile: join(dir, `${OPERATOR_CERTIFICATE}.key`) },
  };
}

/** The certificates already issued for this state directory, or undefined. */
export function loadLocalCertificates(files: LocalTlsFiles): ClusterCertificates | undefined {
  return existsSync(files.storeFile) ? (JSON.parse(readFileSync(files.storeFile, "utf8")) as ClusterCertificates) : undefined;
}

/**
 * The CA (created on first use) and the plan's certificates: those already issued for the same names
 * are kept, so a second `up` issues nothing, and a node added later gets its own.
 */
export function ensureLocalCertificates(files: LocalTlsFiles, name: string, topology: Topology, addressing: Addressing): ClusterCertificates {
  mkdirSync(files.dir, { recursive: true, mode: 0o700 });
  let authority: CertificateAuthority;
  if (existsSync(files.caKeyFile) && existsSync(files.caFile)) {
    authority = { cert: readFileSync(files.caFile, "utf8"), key: readFileSync(files.caKeyFile, "utf8") };
  } else {
    authority = createCertificateAuthority(name);
    writeFileSync(files.caKeyFile, authority.key, { mode: 0o600 });
    writeFileSync(files.caFile, authority.cert, { mode: 0o644 });
  }
  const existing = loadLocalCertificates(files);
  const certificates = issueClusterCertificates(authority, certificatePlan(topology, addressing), existing);
  if (JSON.stringify(certificates) !== JSON.stringify(existing)) {
    writeFileSync(files.storeFile, JSON.stringify(certificates, null, 2), { mode: 0o600 });
  }
  const operator = certificates.certificates[OPERATOR_CERTIFICATE];
  writeFileSync(files.operator.certFile, operator.cert, { mode: 0o644 });
  writeFileSync(files.operator.keyFile, operator.key, { mode: 0o600 });
  return certificates;
}

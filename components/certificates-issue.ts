// What the ClusterCertificates dynamic resource computes (components/certificates.ts): the cluster CA
// and every certificate of the plan, issued by components/tls, the code the local runner uses. Pure
// apart from key generation; no Pulumi import: the dynamic provider loads this file in its own process.
import { createCertificateAuthority, issueClusterCertificates } from "./tls/issue.ts";
import type { CertificateSpec } from "./tls/plan.ts";
import type { CertificateAuthority, IssuedCertificate } from "./tls/types.ts";

/** The resource's inputs. */
export interface CertificatesInputs {
  /** The cluster's name: the common name of a CA the resource creates ("<name> cluster CA"). */
  name: string;
  /** certificatePlan(topology, addressing, options): which certificates, with which names. */
  plan: CertificateSpec[];
  /** A CA the user supplies (secret config; validated by spec.ts); absent: the resource creates one. */
  authority?: CertificateAuthority;
}

/** The resource's state: its inputs, the CA and the certificates. Every key in it is a Pulumi secret. */
export interface CertificatesState extends CertificatesInputs {
  /** The CA certificate (PEM): public, what clients trust. */
  ca: string;
  /** The CA's private key (PEM), kept in the state only, to sign certificates for new nodes. Secret. */
  caKey: string;
  /** Every certificate of the plan by id (keys included). Secret. */
  certificates: Record<string, IssuedCertificate>;
}

/**
 * The state for `news`: the CA from `news.authority`, else the CA of `olds` when the resource created
 * it, else a new one; then every certificate of the plan, those of `olds` kept when issued by the same
 * CA for the same spec (issueClusterCertificates). A second call with its own result and the same
 * inputs issues nothing.
 */
export function issueCertificatesState(news: CertificatesInputs, olds?: CertificatesState): CertificatesState {
  const authority: CertificateAuthority =
    news.authority ?? (olds && !olds.authority && olds.ca && olds.caKey ? { cert: olds.ca, key: olds.caKey } : createCertificateAuthority(news.name));
  const existing = olds ? { ca: olds.ca, certificates: olds.certificates ?? {} } : undefined;
  const issued = issueClusterCertificates(authority, news.plan, existing);
  return {
    name: news.name,
    plan: news.plan,
    ...(news.authority ? { authority: news.authority } : {}),
    ca: authority.cert,
    caKey: authority.key,
    certificates: issued.certificates,
  };
}

/**
 * Whether an update is due: another plan (a node added or gone, changed names) or another supplied CA.
 * The cluster's name alone changes nothing (a new name is refused by the data identity check anyway).
 */
export function certificatesDiff(olds: Partial<CertificatesInputs>, news: CertificatesInputs): { changes: boolean; replaces: string[]; deleteBeforeReplace: false } {
  const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
  return { changes: !same(olds.plan, news.plan) || !same(olds.authority, news.authority), replaces: [], deleteBeforeReplace: false };
}

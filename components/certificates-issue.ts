// What the ClusterCertificates dynamic resource computes (components/certificates.ts): the cluster CA
// and every certificate of the plan, issued by components/tls, the code the local runner uses. Pure
// apart from key generation; no Pulumi import: the dynamic provider loads this file in its own process.
import { X509Certificate } from "node:crypto";
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

/**
 * A certificate with fewer days left than this is issued again by the next `pulumi up` (service
 * certificates last 825 days: components/tls/issue.ts). The CA itself (10 years) is not renewed here.
 */
export const RENEW_DAYS_BEFORE_EXPIRY = 30;

/** Ids of the certificates in `certificates` that expire within RENEW_DAYS_BEFORE_EXPIRY of `now`. */
export function expiringCertificates(certificates: Record<string, IssuedCertificate>, now: Date = new Date()): string[] {
  const limit = now.getTime() + RENEW_DAYS_BEFORE_EXPIRY * 86_400_000;
  return Object.entries(certificates)
    .filter(([, c]) => Date.parse(new X509Certificate(c.cert).validTo) <= limit)
    .map(([id]) => id);
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
export function issueCertificatesState(news: CertificatesInputs, olds?: CertificatesState, now: Date = new Date()): CertificatesState {
  const authority: CertificateAuthority =
    news.authority ?? (olds && !olds.authority && olds.ca && olds.caKey ? { cert: olds.ca, key: olds.caKey } : createCertificateAuthority(news.name));
  // Certificates close to expiry are left out of what is kept: issued again.
  const expiring = new Set(olds?.certificates ? expiringCertificates(olds.certificates, now) : []);
  const kept = Object.fromEntries(Object.entries(olds?.certificates ?? {}).filter(([id]) => !expiring.has(id)));
  const existing = olds ? { ca: olds.ca, certificates: kept } : undefined;
  const issued = issueClusterCertificates(authority, news.plan, existing, { now });
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
 * Whether an update is due: another plan (a node added or gone, changed names), another supplied CA,
 * or a certificate within RENEW_DAYS_BEFORE_EXPIRY of its end. The cluster's name alone changes
 * nothing (a new name is refused by the data identity check anyway).
 */
export function certificatesDiff(
  olds: Partial<CertificatesState>,
  news: CertificatesInputs,
  now: Date = new Date(),
): { changes: boolean; replaces: string[]; deleteBeforeReplace: false } {
  const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
  const renew = olds.certificates ? expiringCertificates(olds.certificates, now).length > 0 : false;
  return { changes: !same(olds.plan, news.plan) || !same(olds.authority, news.authority) || renew, replaces: [], deleteBeforeReplace: false };
}

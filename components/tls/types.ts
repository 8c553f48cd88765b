// Certificate material, PEM encoded. Private keys are secrets: Pulumi secret outputs, or files of
// mode 0600 owned by the service that uses them.

/** The cluster's certificate authority. Its key only ever signs; no service receives it. */
export interface CertificateAuthority {
  cert: string;
  key: string;
}

/** A certificate issued by the cluster CA, with the spec it was issued for (to tell when names changed). */
export interface IssuedCertificate {
  cert: string;
  key: string;
  /** JSON of the CertificateSpec it was issued for. */
  issuedFor: string;
}

/** What the services need: the CA certificate and every certificate of the plan, by id. */
export interface ClusterCertificates {
  ca: string;
  certificates: Record<string, IssuedCertificate>;
}

/** Where one service finds its CA certificate, certificate and key. */
export interface TlsFilePaths {
  caFile: string;
  certFile: string;
  keyFile: string;
}

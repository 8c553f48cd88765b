// The cluster's certificates as a Pulumi resource: a dynamic resource whose provider issues the CA and
// every certificate of certificatePlan with components/tls (components/certificates-issue.ts, the
// local runner's code path) and keeps them in its state, secret. A second `pulumi up` with the same
// topology and addresses changes nothing (diff: the plan is the same); a new node gets a new
// certificate and the others stay (update: issueClusterCertificates with the previous state). The CA
// key stays in this resource's state: no output of the component carries it.
//
// The provider is serialized like the Schema's (see components/schema.ts): its closure captures two
// absolute file URLs and loads the TypeScript module that does the work through tsx at deploy time.
import * as pulumi from "@pulumi/pulumi";
import type { CertificatesInputs, CertificatesState } from "./certificates-issue.ts";
import type { CertificateSpec } from "./tls/plan.ts";
import type { CertificateAuthority, ClusterCertificates } from "./tls/types.ts";

const TSX_API_URL = import.meta.resolve("tsx/esm/api");
const ISSUE_URL = new URL("./certificates-issue.ts", import.meta.url).href;

/** The dynamic resource's type token, as the engine (and the mocks) see it. */
export const CERTIFICATES_TYPE = "pulumi-nodejs:dynamic/dpc:ClusterCertificates";

/** State keys that hold keys: secret in the state and in every output. */
export const CERTIFICATE_SECRET_OUTPUTS = ["authority", "caKey", "certificates"];

// Serialized: every method imports what it needs. Exported for the tests that call it directly.
export const certificatesProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: CertificatesInputs) {
    const { tsImport } = await import(TSX_API_URL);
    const { issueCertificatesState } = await tsImport(ISSUE_URL, ISSUE_URL);
    const state: CertificatesState = issueCertificatesState(inputs);
    return { id: `${inputs.name}-certificates`, outs: state };
  },
  async diff(_id: string, olds: CertificatesState, news: CertificatesInputs) {
    const { tsImport } = await import(TSX_API_URL);
    const { certificatesDiff } = await tsImport(ISSUE_URL, ISSUE_URL);
    return certificatesDiff(olds, news);
  },
  async update(_id: string, olds: CertificatesState, news: CertificatesInputs) {
    const { tsImport } = await import(TSX_API_URL);
    const { issueCertificatesState } = await tsImport(ISSUE_URL, ISSUE_URL);
    return { outs: issueCertificatesState(news, olds) };
  },
  // Certificates live in the services' files: deleting this resource revokes nothing.
  async delete() {},
};

class ClusterCertificatesResource extends pulumi.dynamic.Resource {
  declare readonly ca: pulumi.Output<string>;
  declare readonly certificates: pulumi.Output<ClusterCertificates["certificates"]>;

  constructor(name: string, inputs: { [K in keyof CertificatesInputs]: pulumi.Input<CertificatesInputs[K]> }, opts: pulumi.CustomResourceOptions) {
    super(certificatesProvider, name, { ...inputs, ca: undefined, caKey: undefined, certificates: undefined }, opts, "dpc", "ClusterCertificates");
  }
}

export interface CertificatesArgs {
  /** The cluster's name (the CA's common name when the resource creates the CA). */
  readonly name: string;
  /** certificatePlan(...): every certificate and its names. */
  readonly plan: CertificateSpec[];
  /** A CA from secret config (tlsCaCertificate/tlsCaKey, validated); absent: one is created. Secret. */
  readonly authority?: pulumi.Input<CertificateAuthority>;
}

/** The cluster CA and certificates (type `dpc:index:Certificates`). */
export class Certificates extends pulumi.ComponentResource {
  /** The CA certificate (PEM): not secret; what clients verify the cluster with. */
  readonly caCertificate: pulumi.Output<string>;
  /** The CA certificate and every service certificate and key, as the renderers take them. Secret. */
  readonly bundle: pulumi.Output<ClusterCertificates>;

  constructor(name: string, args: CertificatesArgs, opts?: pulumi.ComponentResourceOptions) {
    // Only plain facts go to super(): component inputs are saved in the state.
    super("dpc:index:Certificates", name, { ids: args.plan.map((s) => s.id) }, opts);
    const resource = new ClusterCertificatesResource(
      `${name}-issued`,
      { name: args.name, plan: args.plan, ...(args.authority ? { authority: pulumi.secret(args.authority) } : {}) },
      { parent: this, additionalSecretOutputs: CERTIFICATE_SECRET_OUTPUTS },
    );
    this.caCertificate = pulumi.unsecret(resource.ca);
    this.bundle = pulumi.secret(pulumi.all([resource.ca, resource.certificates]).apply(([ca, certificates]): ClusterCertificates => ({ ca, certificates })));
    this.registerOutputs({ caCertificate: this.caCertificate });
  }
}

// The ClusterCertificates resource under Pulumi's mocks: its provider's own functions
// (components/certificates-issue.ts), with the state of an earlier registration of the same name
// playing the engine's stored state. A second run of the same program in one test process (the
// idempotent-up test) then gets what a second `pulumi up` would: diff says no change, the state
// stays; a changed plan gets the update's result. Also counts what each run issued.
import { certificatesDiff, issueCertificatesState, type CertificatesInputs, type CertificatesState } from "../../components/certificates-issue.ts";
import { reveal } from "./pulumi-recording.ts";

const stored = new Map<string, CertificatesState>();
/** Certificates (by `<resource>/<id>`) issued anew by each registration, in order. */
export const issuedByRegistration: string[][] = [];

/** The state the engine would hold for this registration. */
export function mockCertificatesState(name: string, rawInputs: Record<string, unknown>): CertificatesState {
  const inputs = reveal(rawInputs) as CertificatesInputs & Record<string, unknown>;
  const news: CertificatesInputs = { name: inputs.name, plan: inputs.plan, ...(inputs.authority ? { authority: inputs.authority } : {}) };
  const olds = stored.get(name);
  const state = !olds ? issueCertificatesState(news) : certificatesDiff(olds, news).changes ? issueCertificatesState(news, olds) : olds;
  issuedByRegistration.push(
    Object.entries(state.certificates)
      .filter(([id, c]) => olds?.certificates[id]?.cert !== c.cert)
      .map(([id]) => `${name}/${id}`),
  );
  stored.set(name, state);
  return state;
}

/** Forgets the stored states (a fresh stack). */
export function forgetCertificates(): void {
  stored.clear();
}

/** The state stored for a ClusterCertificates resource of that name, if any. */
export function storedCertificates(name: string): CertificatesState | undefined {
  return stored.get(name);
}

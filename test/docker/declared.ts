// What `pulumi up` would ask the Docker provider for, recorded under Pulumi's mocks (no engine):
// every registration with its type, name, dependencies and inputs (secrets revealed: the adapter
// needs the real file contents), plus the mocked outputs the program read back.
import { createHash, createHmac, randomBytes } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import { parseClusterConfig, type ClusterConfig } from "../../components/spec.ts";
import { recordRegistrations, reveal, type RecordedRegistration } from "../support/pulumi-recording.ts";
import type { PasswordName } from "../../components/cluster.ts";
import { CERTIFICATES_TYPE } from "../../components/certificates.ts";
import { mockCertificatesState } from "../support/mock-certificates.ts";

export interface Registration extends RecordedRegistration {
  /** The state the mock returned (inputs plus mocked outputs such as an Image's repoDigest). */
  outputs: Record<string, unknown>;
}

export interface Declared {
  config: ClusterConfig;
  registrations: Registration[];
  /** The cluster CA certificate (PEM) the declared certificates chain to: what the test's clients verify with. */
  ca: string;
}


// The engine keeps a RandomPassword's result in the stack's state: the same on every declaration of
// this process (a destroyed and re-declared stack, a changed one), as on a real stack.
const RANDOM_SALT = randomBytes(16);
const RANDOM_PASSWORD_TYPE = "random:index/randomPassword:RandomPassword";


/**
 * Runs the Cluster component (as index.ts does, from stack config) under mocks and returns every
 * registration: the shipped rendering, Citus included.
 */
export async function declareCluster(
  project: string,
  stackConfig: Record<string, string>,
  passwords: Record<PasswordName, string>,
  /** Called with each registration as the program makes it (secrets revealed): the engine's side of a live `pulumi up`. */
  onRegistration?: (registration: Registration) => void,
  /** Outputs a resource of `type` returns besides its inputs (what its provider would return). */
  outputsOf?: (type: string) => Record<string, unknown> | undefined,
): Promise<Declared> {
  const registrations: Registration[] = [];
  const outputs = new Map<string, Record<string, unknown>>();
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        const state: Record<string, unknown> = { ...args.inputs, ...outputsOf?.(args.type) };
        if (args.type === "docker:index/image:Image") {
          // A recognisable digest: the adapter maps it back to the image it builds.
          const digest = createHash("sha256").update(String(args.inputs.imageName)).digest("hex");
          state.repoDigest = `${args.inputs.imageName}@sha256:${digest}`;
        }
        if (args.type === RANDOM_PASSWORD_TYPE) {
          const length = Number(args.inputs.length ?? 32);
          state.result = createHmac("sha256", RANDOM_SALT).update(args.name).digest("base64url").replace(/[^A-Za-z0-9]/g, "x").slice(0, length);
        }
        // The certificates, issued as the resource's provider issues them (components/tls).
        if (args.type === CERTIFICATES_TYPE) Object.assign(state, mockCertificatesState(args.name, args.inputs));
        outputs.set(`${args.type}::${args.name}`, state);
        return { id: `${args.name}-id`, state };
      },
      call: (args) => args.inputs,
    },
    project,
    "docker-test",
    false,
  );
  recordRegistrations((registration) => {
    const revealed: Registration = { ...registration, inputs: reveal(registration.inputs) as Record<string, unknown>, outputs: {} };
    registrations.push(revealed);
    onRegistration?.(revealed);
  });

  const config = parseClusterConfig(stackConfig);
  // Imported after setMocks: modules that build resources must see the mocks.
  const { Cluster } = await import("../../components/cluster.ts");
  const cluster = new Cluster(config.clusterName, { config, passwords });
  await new Promise<void>((resolvePromise) => cluster.appConnectionString.apply(() => resolvePromise()));
  // Wait until no registration has arrived for a while: the program has registered everything. A
  // second: containers are registered in their members' turns (each after an engine read) and the
  // certificates are issued first (RSA keys), so registrations can be that far apart; the Schema and
  // what follows it come only after every container.
  let count = -1;
  for (let i = 0; i < 120 && count !== registrations.length; i++) {
    count = registrations.length;
    await new Promise((r) => setTimeout(r, 1000));
  }
  for (const r of registrations) r.outputs = outputs.get(`${r.type}::${r.name}`) ?? {};
  const certificates = registrations.find((r) => r.type === CERTIFICATES_TYPE);
  if (!certificates || typeof certificates.outputs.ca !== "string") throw new Error("the program declared no certificates");
  return { config, registrations, ca: certificates.outputs.ca };
}

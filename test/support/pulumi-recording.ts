// Records every resource registration the program sends to Pulumi's (mocked) engine monitor: the
// unit tests assert on them, the Docker test turns them into real containers. Call after setMocks.
import * as pulumi from "@pulumi/pulumi";

/** How a secret value arrives in a registration's inputs (Pulumi's gRPC encoding). */
export const SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d";
export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

/** A value with the secrets in it unwrapped from their gRPC encoding (the engine's view of inputs). */
export function reveal(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reveal);
  if (value && typeof value === "object") {
    const record = value as Record<string, unknown>;
    if (record[SECRET_SIG_KEY] === SECRET_SIG) return reveal(record.value);
    return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, reveal(v)]));
  }
  return value;
}

export interface RecordedRegistration {
  type: string;
  name: string;
  urn: string;
  parent: string;
  custom: boolean;
  dependencies: string[];
  deleteBeforeReplace: boolean;
  /** `pulumi destroy` (or a removal) leaves the object in the provider. */
  retainOnDelete: boolean;
  additionalSecretOutputs: string[];
  /** As sent: secrets still wrapped in their signature. */
  inputs: Record<string, unknown>;
}

export function recordRegistrations(onRegistration: (registration: RecordedRegistration) => void): void {
  // The mock monitor has no typed surface for this; wrap its registerResource.
  const monitor = pulumi.runtime.getMonitor() as any;
  const registerResource = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req: any, callback: (err: unknown, response: any) => void) =>
    registerResource(req, (err: unknown, response: any) => {
      if (!err) {
        onRegistration({
          type: req.getType(),
          name: req.getName(),
          urn: response.getUrn(),
          parent: req.getParent(),
          custom: req.getCustom(),
          dependencies: req.getDependenciesList(),
          deleteBeforeReplace: req.getDeletebeforereplace(),
          retainOnDelete: Boolean(req.getRetainondelete?.()),
          additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
          inputs: req.getObject()?.toJavaScript() ?? {},
        });
      }
      callback(err, response);
    });
}

// Resource options the engine receives that the shared recorder (test/support/pulumi-recording.ts)
// does not keep: retainOnDelete, protect, ignoreChanges, by URN. Import after _pulumi-harness.ts
// (it wraps the mock monitor that setMocks installed).
import * as pulumi from "@pulumi/pulumi";

export interface RecordedOptions {
  retainOnDelete: boolean;
  protect: boolean;
  ignoreChanges: string[];
}

export const optionsByUrn = new Map<string, RecordedOptions>();
{
  const monitor = pulumi.runtime.getMonitor() as any;
  const registerResource = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req: any, callback: (err: unknown, response: any) => void) =>
    registerResource(req, (err: unknown, response: any) => {
      if (!err) {
        optionsByUrn.set(response.getUrn(), {
          retainOnDelete: Boolean(req.getRetainondelete?.()),
          protect: Boolean(req.getProtect?.()),
          ignoreChanges: req.getIgnorechangesList(),
        });
      }
      callback(err, response);
    });
}

/** The options a registration was sent with (throws for an unknown URN). */
export function optionsOf(urn: string): RecordedOptions {
  const options = optionsByUrn.get(urn);
  if (!options) throw new Error(`no registration recorded for ${urn}`);
  return options;
}

// A PostgreSQL parameter change under the mocks: two runs of the program, the second with
// postgresParameters set (as Pulumi hands structured config to the program: JSON text). No Docker
// resource changes (no container is replaced or updated: the files they are created from hold no
// changeable parameter); the PostgresConfig dynamic resource carries the new values, which its
// provider applies through Patroni (components/rollout/).
import test from "ava";
import * as pulumi from "@pulumi/pulumi";
import { devStackConfig, key, registrations, reveal, settled, valueOf, type Registration } from "./_pulumi-harness.ts";

const POSTGRES_CONFIG = "pulumi-nodejs:dynamic/dpc:PostgresConfig";

async function run(tag: string, extra: Record<string, string> = {}): Promise<Registration[]> {
  const before = registrations.length;
  pulumi.runtime.setAllConfig({ ...devStackConfig(), ...extra });
  const stack = await import(`../../index.ts?${tag}`);
  await valueOf(stack.appConnectionString);
  await settled();
  return registrations.slice(before);
}

let base: Registration[] = [];
let changed: Registration[] = [];
test.before(async (t) => {
  // Two whole runs of the program: minutes on a loaded 2-core machine.
  t.timeout(600_000);
  base = await run("parameters-base");
  changed = await run("parameters-changed", { [key("postgresParameters")]: JSON.stringify({ shared_buffers: "1GB", work_mem: "64MB" }) });
});

test("a parameter change changes no Docker resource; the PostgresConfig resource carries the new parameters", (t) => {
  const byUrn = new Map(base.map((r) => [r.urn, r]));
  t.deepEqual(changed.map((r) => r.urn).sort(), [...byUrn.keys()].sort(), "the same resources");
  const docker = changed.filter((r) => r.type.startsWith("docker:"));
  t.true(docker.length > 20);
  for (const registration of docker) t.deepEqual(registration.inputs, byUrn.get(registration.urn)!.inputs, registration.urn);
  const [before] = base.filter((r) => r.type === POSTGRES_CONFIG);
  const [after] = changed.filter((r) => r.type === POSTGRES_CONFIG);
  const parameters = (r: Registration) => reveal(r.inputs.parameters) as Record<string, unknown>;
  t.is(parameters(before).shared_buffers, "512MB", "the sized default of Pulumi.dev.yaml's 2048 MiB");
  t.deepEqual([parameters(after).shared_buffers, parameters(after).work_mem], ["1GB", "64MB"]);
  // Everything else the dynamic resource holds is unchanged: the diff is the parameters alone.
  const rest = (r: Registration) => JSON.stringify({ ...r.inputs, parameters: undefined });
  t.is(rest(after), rest(before));
});

test("the PostgresConfig resource: every group and member, Patroni's REST port, credentials secret", (t) => {
  const [resource] = base.filter((r) => r.type === POSTGRES_CONFIG);
  const groups = reveal(resource.inputs.groups) as { group: number; members: { name: string; restUrl: string }[] }[];
  t.deepEqual(groups.map((g) => g.group), [0, 1, 2, 3, 4, 5, 6]);
  t.deepEqual(groups[0].members.map((m) => m.name), ["dpc-coordinator-0", "dpc-coordinator-1", "dpc-coordinator-2"]);
  // HTTPS, dialled at the container's address and verified against the name its certificate carries.
  for (const member of groups.flatMap((g) => g.members)) {
    t.regex(member.restUrl, /^https:\/\/.+:8008$/);
    t.is((member as { serverName?: string }).serverName, member.name);
  }
  t.regex(resource.inputs.ca as string, /^-----BEGIN CERTIFICATE-----/);
  for (const field of ["restAuth", "poolerAdminUrl", "readWriteUrl"]) t.not(reveal(resource.inputs[field]), resource.inputs[field], `${field} is secret`);
  t.true(resource.dependencies.some((urn) => urn.endsWith("::dpc-pgbouncer")), "applied once PgBouncer exists");
});

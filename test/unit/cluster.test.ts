// The Pulumi program under the SDK's mocks: what `pulumi up` of the dev stack would register, in
// which order, and that passwords stay secret. No engine, no docker: the mock monitor records each
// registration request (type, name, parent, dependencies, inputs).
import test from "ava";
import { readFileSync } from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import { parse as parseYaml } from "yaml";

const PROJECT = "distributed-postgres-cluster";
const SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
const CONFIGURED_APP_PASSWORD = "app-password-from-secret-config";

interface Registration {
  type: string;
  name: string;
  urn: string;
  parent: string;
  custom: boolean;
  dependencies: string[];
  deleteBeforeReplace: boolean;
  inputs: Record<string, unknown>;
}
const registrations: Registration[] = [];
const generatedPasswords: string[] = [];

await pulumi.runtime.setMocks(
  {
    newResource(args) {
      const state: Record<string, unknown> = { ...args.inputs };
      if (args.type === "random:index/randomPassword:RandomPassword") {
        state.result = `generated-${args.name}`;
        generatedPasswords.push(state.result as string);
      }
      if (args.type === "docker:index/image:Image") state.repoDigest = `${args.inputs.imageName}@sha256:${"0".repeat(64)}`;
      return { id: `${args.name}-id`, state };
    },
    call: (args) => args.inputs,
  },
  PROJECT,
  "dev",
  false,
);

// Record every registration request as the engine would receive it.
const monitor = pulumi.runtime.getMonitor() as any;
const registerResource = monitor.registerResource.bind(monitor);
monitor.registerResource = (req: any, callback: (err: unknown, response: any) => void) =>
    registerResource(req, (err: unknown, response: any) => {
    if (!err) {
      registrations.push({
        type: req.getType(),
        name: req.getName(),
        urn: response.getUrn(),
        parent: req.getParent(),
        custom: req.getCustom(),
        dependencies: req.getDependenciesList(),
        deleteBeforeReplace: req.getDeletebeforereplace(),
        inputs: req.getObject()?.toJavaScript() ?? {},
      });
    }
    callback(err, response);
  });

function devStackConfig(): Record<string, string> {
  const file = parseYaml(readFileSync(new URL("../../Pulumi.dev.yaml", import.meta.url), "utf8")) as { config: Record<string, unknown> };
  return Object.fromEntries(Object.entries(file.config).map(([key, value]) => [key, String(value)]));
}

function valueOf<T>(output: pulumi.Output<T> | T, timeoutMs = 10_000): Promise<T> {
  if (!pulumi.Output.isInstance(output)) return Promise.resolve(output as T);
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("output never resolved (unknown?)")), timeoutMs);
    output.apply((value) => {
      clearTimeout(timer);
      resolve(value);
      return value;
    });
  });
}

/** Waits until no registration has arrived for a while: the program has registered everything. */
async function settled(): Promise<void> {
  let count = -1;
  for (let i = 0; i < 100 && count !== registrations.length; i++) {
    count = registrations.length;
    await new Promise((r) => setTimeout(r, 150));
  }
}

const isSecretValue = (value: unknown): value is { value: unknown } =>
  typeof value === "object" && value !== null && (value as Record<string, unknown>)[SECRET_SIG_KEY] === SECRET_SIG;
const reveal = (value: unknown): unknown => (isSecretValue(value) ? value.value : value);

/** Every string in a value that is not inside a secret. */
function plainStrings(value: unknown): string[] {
  if (isSecretValue(value)) return [];
  if (typeof value === "string") return [value];
  if (Array.isArray(value)) return value.flatMap(plainStrings);
  if (value && typeof value === "object") return Object.values(value).flatMap(plainStrings);
  return [];
}

// A query string makes a fresh module instance: each import runs the program anew.
const PROGRAM = "../../index.ts";
const CONTAINER = "docker:index/container:Container";
const containers = () => registrations.filter((r) => r.type === CONTAINER);
const byName = (name: string) => registrations.find((r) => r.name === name)!;
const databaseContainers = () => containers().filter((r) => /-(coordinator|worker\d+)-\d+$/.test(r.name));

// ---------------------------------------------------------------------------------------------
// Serial: the invalid-config import must see an empty registry, before the dev stack registers.

test.serial("invalid config throws a ConfigError naming every problem and registers no resource", async (t) => {
  pulumi.runtime.setAllConfig({ ...devStackConfig(), [`${PROJECT}:workerGroups`]: "0", [`${PROJECT}:etcdMembers`]: "4" });
  const error = await t.throwsAsync(import(`${PROGRAM}?invalid-config`));
  t.is(error!.name, "ConfigError");
  t.regex(error!.message, /workerGroups/);
  t.regex(error!.message, /etcdMembers/);
  await settled();
  t.is(registrations.length, 0);
});

test.serial("the kubernetes platform is refused before any resource is registered", async (t) => {
  pulumi.runtime.setAllConfig({ ...devStackConfig(), [`${PROJECT}:platform`]: "kubernetes" });
  const error = await t.throwsAsync(import(`${PROGRAM}?kubernetes`));
  t.regex(error!.message, /kubernetes platform: not implemented yet/);
  await settled();
  t.is(registrations.length, 0);
});

let stack: any;
test.serial("the dev stack program loads", async (t) => {
  pulumi.runtime.setAllConfig(
    { ...devStackConfig(), [`${PROJECT}:appPassword`]: CONFIGURED_APP_PASSWORD },
    [`${PROJECT}:appPassword`],
  );
  stack = await import("../../index.ts");
  await valueOf(stack.appConnectionString);
  await settled();
  t.true(registrations.length > 0);
});

test.serial("one container per process: coordinator 3 + 6 worker groups x 2, etcd 3, HAProxy, PgBouncer", (t) => {
  const names = containers().map((r) => r.name).sort();
  const expected = [
    ...[0, 1, 2].map((m) => `dpc-coordinator-${m}`),
    ...[1, 2, 3, 4, 5, 6].flatMap((g) => [0, 1].map((m) => `dpc-worker${g}-${m}`)),
    ...[0, 1, 2].map((m) => `dpc-etcd-${m}`),
    "dpc-haproxy",
    "dpc-pgbouncer",
  ].sort();
  t.deepEqual(names, expected);
  // A named volume per stateful process, one network, one database image.
  const volumes = registrations.filter((r) => r.type === "docker:index/volume:Volume").map((r) => r.name).sort();
  t.deepEqual(volumes, expected.filter((n) => !/haproxy|pgbouncer/.test(n)).map((n) => `${n}-data`).sort());
  const networks = registrations.filter((r) => r.type === "docker:index/network:Network");
  t.is(networks.length, 1);
  t.deepEqual(networks[0].inputs.ipamConfigs, [{ subnet: "172.28.0.0/16" }]);
  const images = registrations.filter((r) => r.type === "docker:index/image:Image");
  t.is(images.length, 1);
    const build = images[0].inputs.build as any;
  t.deepEqual(build.args, { BASE_IMAGE: "citusdata/citus:13.0.3", PG_MAJOR: "17" });
  t.is(build.context, "images");
  t.true(images[0].inputs.skipPush as boolean);
});

test.serial("components: type tokens, one per group, containers parented by their component", (t) => {
  const components = registrations.filter((r) => !r.custom);
  const count = (type: string) => components.filter((r) => r.type === type).length;
  t.is(count("dpc:index:Cluster"), 1);
  t.is(count("dpc:index:Etcd"), 1);
  t.is(count("dpc:index:PatroniGroup"), 7);
  t.is(count("dpc:index:Router"), 1);
  const cluster = byName("dpc");
  for (const component of components.filter((r) => r.type !== "dpc:index:Cluster")) t.is(component.parent, cluster.urn);
  for (const container of databaseContainers()) {
    const group = container.name.replace(/-\d+$/, "");
    t.is(container.parent, byName(group).urn, container.name);
    t.is(byName(group).type, "dpc:index:PatroniGroup");
  }
  for (const name of ["dpc-etcd-0", "dpc-etcd-1", "dpc-etcd-2"]) t.is(byName(name).parent, byName("dpc-etcd").urn);
  for (const name of ["dpc-haproxy", "dpc-pgbouncer"]) t.is(byName(name).parent, byName("dpc-router").urn);
});

test.serial("each database container carries its own patroni.yml: its name, its group's citus.group, secret", (t) => {
  const containersByGroup = new Map<number, string[]>();
  for (const container of databaseContainers()) {
    t.true(isSecretValue(container.inputs.uploads), `${container.name}: uploads are not secret`);
    const uploads = reveal(container.inputs.uploads) as { file: string; content: string; permissions: string }[];
    const patroni = uploads.find((u) => u.file === "/etc/dpc/patroni.yml");
    t.truthy(patroni, container.name);
    t.is(patroni!.permissions, "0600");
    const yml = parseYaml(patroni!.content);
    t.is(yml.name, container.name);
    t.is(yml.scope, "dpc");
    const expectedGroup = container.name.startsWith("dpc-coordinator") ? 0 : Number(/worker(\d+)/.exec(container.name)![1]);
    t.is(yml.citus.group, expectedGroup, container.name);
    t.is(yml.postgresql.connect_address, `${container.name}:5432`);
    t.is(yml.restapi.authentication.password, "generated-dpc-restApi-password");
    containersByGroup.set(expectedGroup, [...(containersByGroup.get(expectedGroup) ?? []), container.name]);
    t.deepEqual(uploads.map((u) => u.file).sort(), ["/etc/dpc/app-password", "/etc/dpc/patroni.yml", "/etc/dpc/post-bootstrap.sh"]);
    t.is(uploads.find((u) => u.file === "/etc/dpc/app-password")!.content, CONFIGURED_APP_PASSWORD);
  }
  t.deepEqual([...containersByGroup.keys()].sort(), [0, 1, 2, 3, 4, 5, 6]);
});

test.serial("docker containers: hostname = name, network alias, healthcheck, restart policy, replace by delete first", (t) => {
  const network = registrations.find((r) => r.type === "docker:index/network:Network")!;
  for (const container of containers()) {
    const inputs = container.inputs;
    t.is(inputs.name, container.name);
    t.is(inputs.hostname, container.name);
    t.deepEqual(inputs.networksAdvanced, [{ name: network.inputs.name, aliases: [container.name] }]);
    t.is(inputs.restart, "unless-stopped");
    t.true(container.deleteBeforeReplace, container.name);
        t.is((inputs.healthcheck as any).tests[0], "CMD", container.name);
  }
  const published = containers()
    .filter((c) => ((c.inputs.ports as unknown[]) ?? []).length > 0)
    .map((c) => [c.name, c.inputs.ports]);
  // Only the router publishes host ports; the database nodes and etcd stay on the cluster network.
  t.deepEqual(published.sort(), [
    ["dpc-haproxy", [{ internal: 5000, external: 5000 }, { internal: 5001, external: 5001 }]],
    ["dpc-pgbouncer", [{ internal: 6432, external: 6432 }]],
  ]);
  for (const container of databaseContainers()) {
    t.is(container.inputs.cpus, "1");
    t.is(container.inputs.memory, 2048);
    t.deepEqual(container.inputs.entrypoints, ["/usr/local/bin/dpc-entrypoint"]);
    t.regex(container.inputs.image as string, /^dpc-postgres:pg17@sha256:/);
    t.deepEqual(container.inputs.volumes, [{ volumeName: `${container.name}-data`, containerPath: "/var/lib/postgresql/patroni" }]);
  }
  const etcd0 = byName("dpc-etcd-0").inputs.entrypoints as string[];
  t.is(etcd0[0], "/usr/local/bin/etcd");
  t.true(etcd0.includes("--name=dpc-etcd-0"));
  // PgBouncer runs as a fixed non-root user that owns its auth file, mode 0600.
  const pgbouncer = byName("dpc-pgbouncer").inputs;
  t.is(pgbouncer.user, "70:70");
  const userlist = (reveal(pgbouncer.uploads) as { file: string; permissions: string; owner: string }[]).find((u) => u.file.endsWith("userlist.txt"))!;
  t.deepEqual([userlist.permissions, userlist.owner], ["0600", "70"]);
});

test.serial("dependency graph: etcd before every Patroni container, the coordinator group before the router", (t) => {
  const urnsOf = (pattern: RegExp) => containers().filter((c) => pattern.test(c.name)).map((c) => c.urn);
  const etcd = urnsOf(/^dpc-etcd-\d$/);
  const coordinator = urnsOf(/^dpc-coordinator-\d$/);
  t.is(etcd.length, 3);
  for (const container of databaseContainers()) {
    for (const urn of etcd) t.true(container.dependencies.includes(urn), `${container.name} does not wait for ${urn}`);
  }
  for (const urn of coordinator) t.true(byName("dpc-haproxy").dependencies.includes(urn), `HAProxy does not wait for ${urn}`);
  // PgBouncer waits for HAProxy, so transitively for the coordinator group too.
  t.true(byName("dpc-pgbouncer").dependencies.includes(byName("dpc-haproxy").urn));
  // The other direction never holds: etcd depends on no database container.
  for (const name of ["dpc-etcd-0", "dpc-etcd-1", "dpc-etcd-2"]) {
    t.false(byName(name).dependencies.some((urn) => /coordinator|worker|haproxy|pgbouncer/.test(urn)));
  }
});

test.serial("stack outputs: endpoints, etcd endpoints, members per group", async (t) => {
  t.is(await valueOf(stack.readWriteEndpoint), "localhost:5000");
  t.is(await valueOf(stack.readOnlyEndpoint), "localhost:5001");
  t.is(await valueOf(stack.pgbouncerEndpoint), "localhost:6432");
  t.deepEqual(await valueOf(stack.etcdEndpoints), ["http://dpc-etcd-0:2379", "http://dpc-etcd-1:2379", "http://dpc-etcd-2:2379"]);
  const members = (await valueOf(stack.membersPerGroup)) as Record<string, string[]>;
  t.deepEqual(Object.keys(members), ["0", "1", "2", "3", "4", "5", "6"]);
  t.deepEqual(members["0"], ["dpc-coordinator-0", "dpc-coordinator-1", "dpc-coordinator-2"]);
  t.deepEqual(members["6"], ["dpc-worker6-0", "dpc-worker6-1"]);
});

test.serial("secrets: the connection string is a secret; passwords appear in no plain input or output", async (t) => {
  t.true(await pulumi.isSecret(stack.appConnectionString));
  t.is(await valueOf(stack.appConnectionString), `postgresql://app:${CONFIGURED_APP_PASSWORD}@localhost:6432/vectors`);
  for (const name of ["readWriteEndpoint", "readOnlyEndpoint", "pgbouncerEndpoint", "etcdEndpoints", "membersPerGroup"]) {
    t.false(pulumi.Output.isInstance(stack[name]) && (await pulumi.isSecret(stack[name])), name);
  }
  // Four passwords generated (the app password came from secret config), special characters off.
  t.is(generatedPasswords.length, 4);
  for (const r of registrations.filter((r) => r.type === "random:index/randomPassword:RandomPassword")) {
    t.is(r.inputs.special, false);
  }
  const passwords = [CONFIGURED_APP_PASSWORD, ...generatedPasswords];
  // The scan below is not vacuous: the passwords are in the recorded inputs, inside secrets.
  const everything = JSON.stringify(registrations.map((r) => r.inputs));
  for (const password of passwords) t.true(everything.includes(password), password);
  for (const registration of registrations) {
    const leaks = plainStrings(registration.inputs).filter((s) => passwords.some((p) => s.includes(p)));
    t.deepEqual(leaks, [], `${registration.type} ${registration.name} has a password outside a secret`);
  }
});

// A second `pulumi up` with nothing changed must change nothing. Two halves:
// - the program registers the same inputs twice for the same configuration (two runs recorded under
//   the mocks, compared resource by resource);
// - every Docker container field that forces a replacement (or an update) is registered in the form
//   the provider reads back, so the state after the first `up` equals the second run's inputs.
// Facts about the provider: terraform-provider-docker (bundled by @pulumi/docker 5.2),
// internal/provider/resource_docker_container.go (which fields are ForceNew) and
// resource_docker_container_funcs.go (what Read stores); see components/platform/docker-canonical.ts.
import test from "ava";
import * as pulumi from "@pulumi/pulumi";
import { CONTAINER, devStackConfig, registrations, settled, valueOf, type Registration } from "./_pulumi-harness.ts";
import { canonicalCpus, goDuration, nanoCpus, readBackCpus } from "../../components/platform/docker-canonical.ts";
import { DEFAULT_CONFIG } from "../../components/spec.ts";
import { issuedByRegistration } from "../support/mock-certificates.ts";

/** Runs the program once more (a fresh module instance) and returns what it registered. */
async function run(tag: string): Promise<Registration[]> {
  const before = registrations.length;
  pulumi.runtime.setAllConfig(devStackConfig());
  const stack = await import(`../../index.ts?${tag}`);
  await valueOf(stack.appConnectionString);
  await settled();
  return registrations.slice(before);
}

let first: Registration[] = [];
let second: Registration[] = [];
let issued: string[][] = [];
test.before(async () => {
  first = await run("first");
  second = await run("second");
  issued = [...issuedByRegistration];
});

test("the certificates: the first run issues every one, the second (the engine holding the first's state) none", (t) => {
  t.is(issued.length, 2);
  // Every PostgreSQL node, etcd member, the router and the operator.
  t.is(issued[0].length, DEFAULT_CONFIG.coordinatorMembers + DEFAULT_CONFIG.workerGroups * DEFAULT_CONFIG.workerMembers + DEFAULT_CONFIG.etcdMembers + 2);
  t.deepEqual(issued[1], []);
});

const databaseContainers = (runs: Registration[]) => runs.filter((r) => r.type === CONTAINER && /-(coordinator|worker\d+)-\d+$/.test(r.name));

test("two runs of the same configuration register the same resources with identical inputs and options", (t) => {
  t.true(first.length > 50);
  const byUrn = (runs: Registration[]) => new Map(runs.map((r) => [r.urn, r]));
  const a = byUrn(first);
  const b = byUrn(second);
  t.deepEqual([...b.keys()].sort(), [...a.keys()].sort());
  for (const [urn, registration] of a) {
    const again = b.get(urn)!;
    t.deepEqual(again.inputs, registration.inputs, urn);
    t.deepEqual([again.deleteBeforeReplace, [...again.dependencies].sort()], [registration.deleteBeforeReplace, [...registration.dependencies].sort()], urn);
  }
});

// Go's time.Duration.String() of whole seconds.
const GO_DURATION = /^(?:(?:[1-9]\d*)h(?:[0-5]?\d)m|(?:[1-9]\d?)m)?(?:[0-5]?\d)s$/;

/**
 * Container fields that force a replacement (ForceNew) or an update when they differ from the
 * state, with the form the provider's Read stores. Fields Read never sets (env, labels, uploads,
 * volumes, networks_advanced outside an import) keep the registered value in the state.
 */
const CANONICAL: Record<string, { replaces: boolean; form: RegExp; readBack: string }> = {
  name: { replaces: true, form: /^[a-z0-9][a-z0-9_.-]*$/, readBack: "Name without Docker's leading /" },
  hostname: { replaces: true, form: /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, readBack: "Config.Hostname as given" },
  image: { replaces: true, form: /^(?!sha256:)\S+$/, readBack: "Config.Image as given (the image id only for values starting sha256:)" },
  user: { replaces: true, form: /^\d+:\d+$/, readBack: "Config.User as given" },
  cpus: { replaces: true, form: /^(\d+\.0|\d+\.\d*[1-9]|\d*0\.)$/, readBack: "nanoInt64ToDecimalString(HostConfig.NanoCPUs)" },
  shmSize: { replaces: true, form: /^[1-9]\d*$/, readBack: "HostConfig.ShmSize / 1024 / 1024 (whole MiB)" },
  stopTimeout: { replaces: true, form: /^[1-9]\d*$/, readBack: "Config.StopTimeout" },
  "ports[].ip": { replaces: true, form: /^\d{1,3}(\.\d{1,3}){3}$/, readBack: "PortBinding.HostIP as given (0.0.0.0, the provider's default, or 127.0.0.1 for the monitoring; IPv4 only)" },
  "ports[].protocol": { replaces: true, form: /^tcp$/, readBack: "the port key's protocol" },
  memory: { replaces: false, form: /^[1-9]\d*$/, readBack: "HostConfig.Memory / 1024 / 1024 (whole MiB)" },
  restart: { replaces: false, form: /^(no|on-failure|always|unless-stopped)$/, readBack: "HostConfig.RestartPolicy.Name" },
  "healthcheck.interval": { replaces: false, form: GO_DURATION, readBack: "Healthcheck.Interval.String()" },
  "healthcheck.timeout": { replaces: false, form: GO_DURATION, readBack: "Healthcheck.Timeout.String()" },
  "healthcheck.startPeriod": { replaces: false, form: GO_DURATION, readBack: "Healthcheck.StartPeriod.String()" },
};

/** The registered values of a field path (`a.b`, `a[].b`) in a container's inputs. */
function valuesAt(inputs: Record<string, unknown>, path: string): unknown[] {
  const [head, ...rest] = path.split(".");
  const list = head.endsWith("[]");
  const value = inputs[list ? head.slice(0, -2) : head];
  if (value === undefined) return [];
  const items = list ? (value as Record<string, unknown>[]) : [value];
  return rest.length === 0 ? items : items.flatMap((item) => valuesAt(item as Record<string, unknown>, rest.join(".")));
}

test("every container field that forces a replacement or an update is registered in the provider's read-back form", (t) => {
  const containers = first.filter((r) => r.type === CONTAINER);
  t.true(containers.length > 20);
  for (const [field, rule] of Object.entries(CANONICAL)) {
    for (const container of containers) {
      for (const value of valuesAt(container.inputs, field)) {
        t.regex(String(value), rule.form, `${container.name}.${field} = ${JSON.stringify(value)}: not as the provider reads it back (${rule.readBack})`);
      }
    }
  }
  // The fields the issue found in another form: every database node has them.
  for (const container of databaseContainers(first)) {
    t.is(container.inputs.cpus, "1.0");
    t.is((container.inputs.healthcheck as Record<string, unknown>).startPeriod, "2m0s");
    t.is(typeof container.inputs.stopTimeout, "number");
  }
});

test("database containers stop with dockerStopGraceSeconds, both when Pulumi deletes them and on docker stop", (t) => {
  for (const container of databaseContainers(first)) {
    t.is(container.inputs.destroyGraceSeconds, DEFAULT_CONFIG.dockerStopGraceSeconds, container.name);
    t.is(container.inputs.stopTimeout, DEFAULT_CONFIG.dockerStopGraceSeconds, container.name);
  }
  // Stateless ones never get a zero timeout either (the provider's default without destroyGraceSeconds).
  const haproxy = first.find((r) => r.name === "dpc-haproxy")!;
  t.is(haproxy.inputs.destroyGraceSeconds, 10);
  t.is(haproxy.inputs.stopTimeout, undefined);
});

test("cpus: the provider's own cases (helpers_test.go) and the shapes its rule produces", (t) => {
  // TestNanoInt64ToDecimalString in terraform-provider-docker.
  for (const [nano, text] of [[0n, "0"], [1_000_000_000n, "1.0"], [1_500_000_000n, "1.5"], [2_000_000_000n, "2.0"], [2_250_000_000n, "2.25"]] as const) {
    t.is(readBackCpus(nano), text);
  }
  // Nine "0" characters: one decimal, rounded; ten or more: trailing zeros stripped, the dot kept.
  t.is(readBackCpus(nanoCpus(0.5)!), "0.5");
  t.is(readBackCpus(nanoCpus(10)!), "10.");
  t.is(readBackCpus(nanoCpus(256)!), "256.0");
  t.is(readBackCpus(nanoCpus(0.05)!), "0.1");
  t.deepEqual([1, 2, 1.5, 10, 0.25, 12.5].map(canonicalCpus), ["1.0", "2.0", "1.5", "10.", "0.25", "12.5"]);
  // No string sets these and reads back unchanged: refused by the spec (spec-day-two.test.ts).
  t.deepEqual([0.05, 0.01, 1.0000000001].map(canonicalCpus), [undefined, undefined, undefined]);
  for (const cpus of [0.1, 0.5, 1, 1.5, 2, 3.75, 10, 64, 100.5]) t.regex(canonicalCpus(cpus)!, CANONICAL.cpus.form, String(cpus));
});

test("durations: Go's time.Duration.String() of whole seconds", (t) => {
  t.deepEqual([0, 3, 5, 10, 59, 60, 90, 120, 3600, 3725].map(goDuration), ["0s", "3s", "5s", "10s", "59s", "1m0s", "1m30s", "2m0s", "1h0m0s", "1h2m5s"]);
  for (const seconds of [1, 59, 60, 61, 119, 120, 599, 3599, 3600, 7322]) t.regex(goDuration(seconds), GO_DURATION);
  t.throws(() => goDuration(1.5));
});

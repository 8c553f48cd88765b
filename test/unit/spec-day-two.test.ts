// The configuration keys of day two: endpointHost, dockerStopGraceSeconds, retainDataOnDestroy, and
// databaseCpus only in values the Docker provider reads back unchanged.
import test from "ava";
import { ConfigError, DEFAULT_CONFIG, isHostName, parseClusterConfig } from "../../components/spec.ts";

function problemsOf(raw: Record<string, unknown>): string[] {
  try {
    parseClusterConfig(raw);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

test("defaults: published on localhost, 300 s to stop, data kept", (t) => {
  t.is(DEFAULT_CONFIG.endpointHost, "localhost");
  t.is(DEFAULT_CONFIG.dockerStopGraceSeconds, 300);
  t.true(DEFAULT_CONFIG.retainDataOnDestroy);
});

test("endpointHost: DNS names and IPv4 addresses pass; anything else is refused naming the value", (t) => {
  for (const host of ["localhost", "db.example.com", "docker-1", "10.0.0.5", "192.168.1.254"]) t.true(isHostName(host), host);
  for (const host of ["", "db example.com", "-db", "db-.example.com", "http://db", "db:2375", "999.1.1.1", "1.2.3", "[::1]", "a".repeat(64)]) {
    t.false(isHostName(host), host);
  }
  t.is(parseClusterConfig({ endpointHost: "10.0.0.5" }).endpointHost, "10.0.0.5");
  t.deepEqual(problemsOf({ endpointHost: "tcp://docker:2375" }), [
    'endpointHost: got "tcp://docker:2375"; allowed: a DNS name or an IPv4 address (the Docker host as clients reach it, e.g. db.example.com)',
  ]);
  t.deepEqual(problemsOf({ endpointHost: "" }), ["endpointHost: got \"\"; allowed: a non-empty string"]);
});

test("endpointHost is a docker key: another value on kubernetes is refused", (t) => {
  const kubernetes = { platform: "kubernetes", databaseImage: "registry.example/dpc:1", deployStepsImage: "registry.example/dpc-steps:1" };
  t.is(parseClusterConfig(kubernetes).endpointHost, "localhost");
  t.deepEqual(problemsOf({ ...kubernetes, endpointHost: "db.example.com" }), [
    'endpointHost: got "db.example.com" with platform "kubernetes"; allowed: only with platform "docker" (kubernetes publishes through kubernetesServiceType)',
  ]);
});

test("dockerStopGraceSeconds: 30 to 3600; retainDataOnDestroy: a boolean", (t) => {
  t.is(parseClusterConfig({ dockerStopGraceSeconds: "120" }).dockerStopGraceSeconds, 120);
  t.deepEqual(problemsOf({ dockerStopGraceSeconds: 10 }), ["dockerStopGraceSeconds: got 10; allowed: an integer from 30 to 3600"]);
  t.false(parseClusterConfig({ retainDataOnDestroy: "false" }).retainDataOnDestroy);
  t.deepEqual(problemsOf({ retainDataOnDestroy: "keep" }), ['retainDataOnDestroy: got "keep"; allowed: true or false']);
});

test("databaseCpus the provider would read back as another number is refused", (t) => {
  t.is(parseClusterConfig({ databaseCpus: "1.5" }).databaseCpus, 1.5);
  t.is(parseClusterConfig({ databaseCpus: "10" }).databaseCpus, 10);
  const [problem] = problemsOf({ databaseCpus: "0.05" });
  t.regex(problem, /^databaseCpus: got 0\.05; allowed: a number of CPUs the Docker provider reads back as the same number/);
  t.regex(problemsOf({ databaseCpus: "1.0000000001" })[0], /^databaseCpus: got 1\.0000000001;/);
});

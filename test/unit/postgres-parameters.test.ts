// postgresParameters: validated by name and value, and carried by Patroni's dynamic configuration
// alone: patroni.yml (what a container is created from) does not change with it.
import test from "ava";
import { ConfigError, DEFAULT_CONFIG, MANAGED_PARAMETERS, parseClusterConfig, planTopology } from "../../components/spec.ts";
import { parse } from "yaml";
import { dynamicParameters, postgresTlsParameters, renderPatroniYml, sizedParameters } from "../../components/render/patroni.ts";
import { containerAddressing, containerLayout, dockerHostNaming } from "../../components/render/container.ts";

const problems = (raw: Record<string, unknown>): string[] => {
  try {
    parseClusterConfig(raw);
    return [];
  } catch (error) {
    return (error as ConfigError).problems;
  }
};

test("accepted as a map (YAML stack file) or as JSON text (Pulumi's structured config); values overlay the sized ones", (t) => {
  const fromMap = parseClusterConfig({ postgresParameters: { work_mem: "16MB", "hnsw.ef_search": 100, jit: false } });
  const fromJson = parseClusterConfig({ postgresParameters: JSON.stringify({ work_mem: "16MB", "hnsw.ef_search": 100, jit: false }) });
  t.deepEqual(fromJson.postgresParameters, fromMap.postgresParameters);
  const parameters = dynamicParameters(fromMap);
  t.deepEqual([parameters.work_mem, parameters["hnsw.ef_search"], parameters.jit, parameters.shared_buffers], ["16MB", 100, false, "512MB"]);
  t.deepEqual(parseClusterConfig({}).postgresParameters, {});
});

test("refused: parameters Patroni or Citus manage, bad names, values that are not scalars or hold line breaks, non-maps", (t) => {
  for (const name of ["wal_level", "shared_preload_libraries", "port", "primary_conninfo", "password_encryption"]) {
    const [problem] = problems({ postgresParameters: { [name]: "x" } });
    t.regex(problem, new RegExp(`^postgresParameters\\.${name}: got "x"; allowed: not this parameter \\(${MANAGED_PARAMETERS[name].replace(/[()]/g, ".")}\\)$`));
  }
  t.regex(problems({ postgresParameters: { "Work-Mem": 1 } })[0], /^postgresParameters\.Work-Mem: not a PostgreSQL parameter name/);
  t.regex(problems({ postgresParameters: { work_mem: { a: 1 } } })[0], /^postgresParameters\.work_mem: got \{"a":1\}; allowed: a string, number or boolean$/);
  t.regex(problems({ postgresParameters: { application_name: "a\nb" } })[0], /without line breaks/);
  t.regex(problems({ postgresParameters: "not json" })[0], /^postgresParameters: got "not json"; allowed: a map/);
});

test("accepted on kubernetes too (the rollout Job applies them in the cluster); the same rules refuse managed parameters there", (t) => {
  const kubernetes = { platform: "kubernetes", databaseImage: "r/i:1", deployStepsImage: "r/steps:1" };
  t.deepEqual(problems({ ...kubernetes, postgresParameters: { work_mem: "8MB", "hnsw.ef_search": 80 } }), []);
  t.deepEqual(parseClusterConfig({ ...kubernetes, postgresParameters: { work_mem: "8MB" } }).postgresParameters, { work_mem: "8MB" });
  t.deepEqual(problems({ ...kubernetes, postgresParameters: { wal_level: "minimal" } }), [
    `postgresParameters.wal_level: got "minimal"; allowed: not this parameter (${MANAGED_PARAMETERS.wal_level})`,
  ]);
});

test("patroni.yml: the same with or without postgresParameters; sized parameters in bootstrap.dcs, only the socket directory local", (t) => {
  const render = (raw: Record<string, unknown>) => {
    const config = parseClusterConfig(raw);
    const topology = planTopology(config);
    const secrets = { superuser: "s", replication: "r", rewind: "w", restApi: "a", app: "p" };
    return topology.groups.flat().map((node) => renderPatroniYml(config, topology, node, containerAddressing(config, topology, dockerHostNaming), containerLayout(config).postgres(node), secrets));
  };
  t.deepEqual(render({ postgresParameters: { shared_buffers: "1GB", work_mem: "64MB" } }), render({}));
  const config = parseClusterConfig({});
  const topology = planTopology(config);
  const node = topology.groups[0][0];
  const layout = containerLayout(config).postgres(node);
  const yml = parse(renderPatroniYml(config, topology, node, containerAddressing(config, topology, dockerHostNaming), layout, { superuser: "s", replication: "r", rewind: "w", restApi: "a", app: "p" }));
  // Local parameters override the DCS in Patroni: only what differs per node is there (its socket
  // directory, its TLS files, Citus' connection options with the node's CA file).
  const { unix_socket_directories: socketDir, "citus.node_conninfo": conninfo, ...tls } = yml.postgresql.parameters;
  t.is(socketDir, layout.socketDir);
  t.deepEqual(tls, postgresTlsParameters(layout));
  t.regex(conninfo, /^sslmode=verify-full sslrootcert=\/etc\/dpc\/tls\/ca\.crt /);
  t.deepEqual(yml.bootstrap.dcs.postgresql.parameters, sizedParameters(config));
  t.is(yml.bootstrap.dcs.postgresql.parameters.shared_buffers, `${DEFAULT_CONFIG.databaseMemoryMb / 4}MB`);
});

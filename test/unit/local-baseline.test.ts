// The single-node baseline's rendered files: the cluster's parameters without Citus, on its own address.
import test from "ava";
import { postgresParameters } from "../../components/render/index.ts";
import { parseClusterConfig } from "../../components/spec.ts";
import { baselineLayout, baselineParameters, baselinePaths, renderBaselineConf, renderBaselineHba } from "../../local/baseline-config.ts";
import { baselineAddress } from "../../local/layout.ts";

const config = parseClusterConfig({ databaseMemoryMb: 512, databaseCpus: 0.5 });
const paths = baselinePaths("/state/baseline");

test("the baseline's parameters are every cluster parameter except citus.*, plus its address, port and files", (t) => {
  const cluster = postgresParameters(config, baselineLayout(config, paths));
  const parameters = baselineParameters(config, paths, "127.17.4.1", 5432);
  t.true(Object.keys(cluster).some((name) => name.startsWith("citus.")), "the cluster has citus settings to leave out");
  t.deepEqual(Object.keys(parameters).filter((name) => name.startsWith("citus.")), []);
  for (const [name, value] of Object.entries(cluster)) if (!name.startsWith("citus.")) t.is(parameters[name], value, name);
  t.is(parameters.shared_buffers, "128MB");
  t.is(parameters.max_connections, 200);
  t.false("shared_preload_libraries" in parameters);
  t.is(parameters.listen_addresses, "127.17.4.1");
  t.is(parameters.port, 5432);
  t.is(parameters.unix_socket_directories, "/state/baseline");
  t.is(parameters.hba_file, "/state/baseline/pg_hba.conf");
  t.is(parameters.ident_file, "/state/baseline/data/pg_ident.conf");
});

test("postgresql.conf quotes strings (doubling quotes) and leaves numbers bare; pg_hba is peer locally, scram-sha-256 on loopback", (t) => {
  t.is(renderBaselineConf({ port: 5432, shared_buffers: "128MB", odd: "it's" }).split("\n").slice(1).join("\n"), "port = 5432\nshared_buffers = '128MB'\nodd = 'it''s'\n");
  t.is(renderBaselineHba(), "local all all peer\nhost all all 127.0.0.0/8 scram-sha-256\n");
});

test("the baseline's address is 127.N.4.1 in the DPC_LOCAL_NETWORK block", (t) => {
  const saved = process.env.DPC_LOCAL_NETWORK;
  try {
    process.env.DPC_LOCAL_NETWORK = "17";
    t.is(baselineAddress(), "127.17.4.1");
    delete process.env.DPC_LOCAL_NETWORK;
    t.is(baselineAddress(), "127.0.4.1");
  } finally {
    if (saved === undefined) delete process.env.DPC_LOCAL_NETWORK;
    else process.env.DPC_LOCAL_NETWORK = saved;
  }
});

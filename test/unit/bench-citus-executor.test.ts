// The Citus executor settings rendered for the topology (issue 16: cross-shard search under concurrency).
import test from "ava";
import { DEFAULT_CONFIG } from "../../components/spec.ts";
import { citusExecutorConnections, postgresParameters } from "../../components/render/patroni.ts";

const layout = { socketDir: "/run/postgresql" } as Parameters<typeof postgresParameters>[1];

test("one executor connection per worker core, at least 2, cached between queries", (t) => {
  t.is(citusExecutorConnections({ ...DEFAULT_CONFIG, databaseCpus: 1 }), 2);
  t.is(citusExecutorConnections({ ...DEFAULT_CONFIG, databaseCpus: 2 }), 2);
  t.is(citusExecutorConnections({ ...DEFAULT_CONFIG, databaseCpus: 3.5 }), 4);
  const parameters = postgresParameters({ ...DEFAULT_CONFIG, databaseCpus: 4 }, layout);
  t.is(parameters["citus.max_adaptive_executor_pool_size"], 4);
  t.is(parameters["citus.max_cached_conns_per_worker"], 4);
});

test("all sessions together leave 20 of a worker's connections free", (t) => {
  const parameters = postgresParameters(DEFAULT_CONFIG, layout);
  t.is(parameters["citus.max_shared_pool_size"], Number(parameters.max_connections) - 20);
});

// The local PgBouncer exporter emits prometheus-community/pgbouncer_exporter's names and labels, so the
// alert rules (written against those) read the same series locally and on Docker.
import test from "ava";
import { pgbouncerMetrics } from "../../monitoring/pgbouncer-exporter.ts";

const rows = {
  pools: [{ database: "vectors", user: "app", cl_active: 3, cl_waiting: 2, sv_active: 5, sv_idle: 1, sv_used: 0, maxwait: 0 }],
  databases: [{ name: "vectors", host: "127.0.0.1", port: 5000, database: "vectors", force_user: null, pool_mode: null, pool_size: 40, max_connections: 80, current_connections: 6 }],
  lists: [{ list: "used_clients", items: 7 }, { list: "free_clients", items: 43 }, { list: "dns_names", items: 0 }],
  config: [{ key: "max_client_conn", value: "1000" }],
};

test("one admin-console reading becomes the upstream exporter's series", async (t) => {
  const { registry, refresh } = pgbouncerMetrics(async () => rows);
  await refresh();
  const text = await registry.metrics();
  t.regex(text, /^pgbouncer_up 1$/m);
  t.regex(text, /^pgbouncer_pools_client_waiting_connections\{database="vectors",user="app"\} 2$/m);
  t.regex(text, /^pgbouncer_pools_server_active_connections\{database="vectors",user="app"\} 5$/m);
  t.regex(text, /^pgbouncer_databases_pool_size\{name="vectors",host="127.0.0.1",port="5000",database="vectors",force_user="",pool_mode=""\} 40$/m);
  t.regex(text, /^pgbouncer_used_clients 7$/m);
  t.regex(text, /^pgbouncer_config_max_client_connections 1000$/m);
});

test("an unreachable admin console reads as pgbouncer_up 0, with no stale series", async (t) => {
  let reachable = true;
  const { registry, refresh } = pgbouncerMetrics(async () => {
    if (!reachable) throw new Error("connection refused");
    return rows;
  });
  await refresh();
  reachable = false;
  await refresh();
  const text = await registry.metrics();
  t.regex(text, /^pgbouncer_up 0$/m);
  t.notRegex(text, /^pgbouncer_pools_server_active_connections\{/m);
});

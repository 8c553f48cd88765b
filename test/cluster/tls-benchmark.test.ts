// Issue 14: the benchmark's search with and without TLS on the client leg, in one run, through the
// same PgBouncer (TCP with sslmode=verify-full against its unix socket). Numbers go to the log; what
// is asserted is that both sides really ran as named (encrypted or not) and answered every search.
import test from "ava";
import { join } from "node:path";
import { PORTS, ROLES } from "../../components/render/types.ts";
import { compareTls, formatTlsComparison } from "../../benchmarks/tls-compare.ts";
import { runningCluster } from "./context.ts";

const cluster = runningCluster();

test("the benchmark's search through PgBouncer with TLS (verify-full) and without (unix socket), alternated in one run", async (t) => {
  const tlsUrl = cluster.pgbouncerUrl("app");
  // PgBouncer's unix socket: a local client that needs no TLS (reachable only on this machine).
  const socketDir = cluster.layout.pgbouncer.socketDir;
  const plainUrl = `postgresql://${ROLES.app}:${encodeURIComponent(cluster.secrets().app)}@/${cluster.config.database}?host=${encodeURIComponent(socketDir)}&port=${PORTS.pgbouncer}`;
  const result = await compareTls({ tlsUrl, plainUrl, seconds: 5, rounds: 2, clients: 4, rows: 4000, connections: 30, log: (line) => t.log(line) });
  t.log(`\n${formatTlsComparison(result)}`);
  t.log(`socket: ${join(socketDir, `.s.PGSQL.${PORTS.pgbouncer}`)}`);
  t.true(result.tls.encrypted);
  t.false(result.plain.encrypted);
  for (const side of [result.tls, result.plain]) {
    t.is(side.errors, 0, `${side.transport}: errors`);
    t.true(side.searches > 0 && side.qps > 0 && side.p95Ms > 0 && side.connectP95Ms > 0, JSON.stringify(side));
  }
});

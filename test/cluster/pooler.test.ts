// The pooler checks (test/support/pooler-checks.ts) through the local cluster's PgBouncer.
import test from "ava";
import { sessionPoolDatabase } from "../../components/render/pgbouncer.ts";
import { registerPoolerChecks } from "../support/pooler-checks.ts";
import { runningCluster } from "./context.ts";

const cluster = runningCluster();
registerPoolerChecks(test, {
  appUrl: cluster.pgbouncerUrl("app"),
  sessionUrl: cluster.pgbouncerUrl("app", sessionPoolDatabase(cluster.config)),
});

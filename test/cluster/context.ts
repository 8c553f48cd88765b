// The running local cluster the harness started, as the tests see it.
import { LocalCluster } from "../../local/cluster.ts";

export function runningCluster(): LocalCluster {
  const stackFile = process.env.DPC_TEST_STACK_FILE;
  const stateDir = process.env.DPC_TEST_STATE_DIR;
  if (!stackFile || !stateDir) {
    throw new Error("no running cluster: run these tests through `npm run test:cluster` (test/cluster/harness.ts)");
  }
  return new LocalCluster({ stackFile, stateDir, log: () => undefined });
}

// Entry point of the deploy-steps image (images/deploy-steps.Dockerfile): `deploy-step schema`,
// `benchmark`, `rollout`, `rotation` or `scaling`, run by the kubernetes platform's Jobs
// (components/in-cluster-step.ts).
import { runInClusterStep } from "../components/in-cluster-step.ts";
import { inClusterAccess, patchConfigMapData } from "../components/platform/kubernetes/result-writer.ts";

const status = await runInClusterStep({
  env: process.env,
  argv: process.argv.slice(2),
  report: (namespace, name, data) => patchConfigMapData(inClusterAccess(), namespace, name, data),
});
// A pool or timer left open must not keep the Job's pod running until its deadline.
process.exit(status);

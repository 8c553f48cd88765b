// Rotation step 3 on Kubernetes (components/rotation/step.ts runRotationStep with pgbouncerPods): each
// PgBouncer pod keeps its own pools, so the one login per pool with the new application password is
// made at every ready pod's address (the headless `-pods` Service's DNS answer), verified against the
// router's certificate name; through the Service alone the logins could all reach one pod.
import test from "ava";
import { runRotationStep, type RotationStepInputs } from "../../components/rotation/step.ts";

const OLD = { superuser: "superuser-pw-1", replication: "replication-pw", rewind: "rewind-pw-1", restApi: "rest-api-pw-1", app: "app-password-1" };
const INPUTS: RotationStepInputs = {
  old: OLD,
  next: { ...OLD, app: "app-password-2" },
  readWriteEndpoint: "dpc-haproxy.dpc.svc.cluster.local:5000",
  database: "vectors",
  timeoutSeconds: 5,
  pgbouncerEndpoint: "dpc-pgbouncer.dpc.svc.cluster.local:6432",
  poolerDatabases: ["vectors", "vectors_session"],
  pgbouncerPods: "dpc-pgbouncer-pods.dpc.svc.cluster.local",
};

function recorder() {
  const logins: { urls: string[]; serverName?: string }[] = [];
  const resolved: string[] = [];
  return {
    logins,
    resolved,
    deps: {
      resolve: async (host: string) => {
        resolved.push(host);
        return ["10.244.1.7", "10.244.2.9"];
      },
      login: async (urls: string[], options: { serverName?: string } = {}) => void logins.push({ urls, serverName: options.serverName }),
      database: async () => ({ workers: [] }),
    },
  };
}

test("a new application password: one login per pool at every ready PgBouncer pod, verified as the Service's name", async (t) => {
  const r = recorder();
  const result = await runRotationStep(INPUTS, () => undefined, r.deps);
  t.deepEqual(result.steps, ["database", "pgbouncer"]);
  t.deepEqual(r.resolved, ["dpc-pgbouncer-pods.dpc.svc.cluster.local"]);
  t.deepEqual(r.logins, [
    { urls: ["postgresql://app:app-password-2@10.244.1.7:6432/vectors", "postgresql://app:app-password-2@10.244.1.7:6432/vectors_session"], serverName: "dpc-pgbouncer.dpc.svc.cluster.local" },
    { urls: ["postgresql://app:app-password-2@10.244.2.9:6432/vectors", "postgresql://app:app-password-2@10.244.2.9:6432/vectors_session"], serverName: "dpc-pgbouncer.dpc.svc.cluster.local" },
  ]);
});

test("no ready PgBouncer pod fails the step (the new password reached no pool); other passwords need no login", async (t) => {
  const r = recorder();
  await t.throwsAsync(runRotationStep(INPUTS, () => undefined, { ...r.deps, resolve: async () => [] }), { message: /no ready PgBouncer pod behind dpc-pgbouncer-pods/ });
  const superuserOnly = await runRotationStep({ ...INPUTS, next: { ...OLD, superuser: "superuser-pw-2" } }, () => undefined, r.deps);
  t.deepEqual(superuserOnly.steps, ["database"]);
  t.deepEqual(r.logins, []);
});

test("without pgbouncerPods (docker: one PgBouncer at its published port) the logins go to the endpoint as given", async (t) => {
  const r = recorder();
  const { pgbouncerPods: _, ...docker } = INPUTS;
  await runRotationStep({ ...docker, pgbouncerEndpoint: "127.0.0.1:6432" }, () => undefined, r.deps);
  t.deepEqual(r.resolved, []);
  t.deepEqual(r.logins, [{ urls: ["postgresql://app:app-password-2@127.0.0.1:6432/vectors", "postgresql://app:app-password-2@127.0.0.1:6432/vectors_session"], serverName: undefined }]);
});

// Kubernetes: PgBouncer's objects do not change when the application password rotates (auth_query
// looks it up in the database; the auth file Secret holds generated credentials only).
import test from "ava";
import { registrations, reveal, type Registration } from "./_pulumi-harness.ts";
import { loadKubernetesStack, TYPES, k8sName } from "./_kubernetes-stack.ts";
import { ROLES } from "../../components/render/types.ts";

const pgbouncerObjects = (runs: Registration[]) =>
  runs.filter((r) => [TYPES.secret, TYPES.deployment, TYPES.configMap].includes(r.type as never) && /pgbouncer(?!-exporter)/.test(k8sName(r)));
const plain = (value: unknown) => JSON.parse(JSON.stringify(value, (_k, v) => reveal(v)));

test("PgBouncer's Deployment and Secret are the same for two application passwords; neither holds one", async (t) => {
  await loadKubernetesStack({ appPassword: "first-app-password-k8s" }, "pooler-first");
  const firstRun = pgbouncerObjects(registrations);
  const count = registrations.length;
  await loadKubernetesStack({ appPassword: "second-app-password-k8s" }, "pooler-second");
  const secondRun = pgbouncerObjects(registrations.slice(count));
  t.true(firstRun.length > 0, "PgBouncer's objects found");
  t.is(secondRun.length, firstRun.length);
  t.deepEqual(secondRun.map((r) => plain(r.inputs)), firstRun.map((r) => plain(r.inputs)));
  const text = JSON.stringify(firstRun.map((r) => plain(r.inputs)));
  t.false(text.includes("first-app-password-k8s"));
  // The auth file in the Secret: the lookup role, PgBouncer's admin and the exporter, no application role.
  const secret = plain(firstRun.find((r) => r.type === TYPES.secret)!.inputs) as { stringData: Record<string, string> };
  const userlist = Object.entries(secret.stringData).find(([name]) => name.endsWith("userlist.txt"))![1];
  t.deepEqual(userlist.trim().split("\n").map((line) => JSON.parse(line.split(" ")[0])), [ROLES.poolerLookup, ROLES.poolerAdmin, ROLES.monitor]);
  t.log(`PgBouncer objects: ${firstRun.map((r) => `${r.type.split(":").at(-1)} ${k8sName(r)}`).join(", ")}`);
});

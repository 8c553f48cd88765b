// The on_role_change callback (components/render/citus-promote.ts): valid Python that names every
// coordinator member (workers), wakes its own HA loop (quorum-mode members), reads the REST password
// from patroni.yml, and does nothing on any change but a promotion.
import test from "ava";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseClusterConfig, planTopology } from "../../components/spec.ts";
import { hasRoleChangeCallback, renderPromoteCallback, wakesHaLoop } from "../../components/render/index.ts";
import { containerAddressing, containerLayout, dockerHostNaming } from "../../components/render/container.ts";
import { localAddressing, localLayout, localPaths } from "../../local/layout.ts";

const config = parseClusterConfig({});
const topology = planTopology(config);
const addressing = containerAddressing(config, topology, dockerHostNaming);
const worker = topology.groups[1][0];

function render(configFile = "/etc/dpc/patroni.yml"): string {
  return renderPromoteCallback(config, topology, worker, addressing, { ...containerLayout(config).postgres(worker), configFile });
}

test("the callback names every coordinator member's /citus endpoint (https, the node's CA), its group, and no password", (t) => {
  const script = render();
  for (const node of topology.groups[0]) t.true(script.includes(`https://${node.name}:8008/citus`), node.name);
  t.regex(script, /^CA_FILE = "\/etc\/dpc\/tls\/ca\.crt"$/m);
  t.regex(script, /ssl\.create_default_context\(cafile=CA_FILE\)/);
  t.regex(script, /^GROUP = 1$/m);
  t.regex(script, /"type": "after_promote"/);
  t.false(script.includes("PLACEHOLDER"), "the REST password is read from patroni.yml, not rendered");
});

test("the callback is valid Python and exits 0 without acting on a change to replica", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "dpc-callback-"));
  try {
    const file = join(dir, "callback.py");
    writeFileSync(file, render(join(dir, "missing-patroni.yml")));
    execFileSync("python3", ["-m", "py_compile", file]);
    // A replica (or any other action) returns before reading patroni.yml, which does not exist here.
    const run = spawnSync("python3", [file, "on_role_change", "replica", "dpc"], { encoding: "utf8" });
    t.is(run.status, 0, run.stderr);
    t.is(run.stderr, "");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the local cluster runs the same callback as the containers: only the addresses and paths differ", (t) => {
  const local = localAddressing(topology);
  const localPostgres = localLayout(config, localPaths("/state")).postgres(worker);
  const localScript = renderPromoteCallback(config, topology, worker, local, localPostgres);
  // The container's script with the local addresses and paths put in its place.
  let asLocal = render();
  asLocal = asLocal.replace(JSON.stringify("/etc/dpc/patroni.yml"), JSON.stringify(localPostgres.configFile));
  asLocal = asLocal.replace(JSON.stringify(containerLayout(config).postgres(worker).socketDir), JSON.stringify(localPostgres.socketDir));
  asLocal = asLocal.replace(JSON.stringify(`${containerLayout(config).postgres(worker).binDir}/psql`), JSON.stringify(`${localPostgres.binDir}/psql`));
  asLocal = asLocal.replace(JSON.stringify(containerLayout(config).postgres(worker).tls!.caFile), JSON.stringify(localPostgres.tls!.caFile));
  for (const node of topology.groups[0]) asLocal = asLocal.replace(`https://${node.name}:8008/citus`, `https://${local.postgres(node).connect}:8008/citus`);
  t.is(asLocal, localScript);
});

test("without TLS in the layout the callback speaks plain HTTP", (t) => {
  const { tls: _tls, ...plainLayout } = containerLayout(config).postgres(worker);
  const script = renderPromoteCallback(config, topology, worker, addressing, { ...plainLayout, configFile: "/etc/dpc/patroni.yml" });
  t.true(script.includes(`http://${topology.groups[0][0].name}:8008/citus`));
  t.regex(script, /^CA_FILE = None$/m);
});

test("a quorum-mode member (the coordinator's) runs the callback to wake its own HA loop; two-member groups do not", (t) => {
  const coordinator = topology.groups[0][1];
  t.is(config.synchronousMode, "quorum");
  t.true(wakesHaLoop(config, topology, coordinator));
  t.true(hasRoleChangeCallback(config, topology, coordinator));
  const script = renderPromoteCallback(config, topology, coordinator, addressing, { ...containerLayout(config).postgres(coordinator), configFile: "/etc/dpc/patroni.yml" });
  t.regex(script, new RegExp(`^OWN_CONFIG_URL = "https://${coordinator.name}:8008/config"$`, "m"));
  t.regex(script, /^COORDINATORS = \[\]$/m, "the coordinator notifies no coordinator");
  // The wakeup is a PATCH that changes nothing: a null for a key Patroni's config never has.
  t.regex(script, /data=b'\{"dpc_wake_ha_loop": null\}', method="PATCH"/);
  // Worker groups of two run synchronous_mode "on": notice to the coordinator only.
  t.is(topology.groups[1].length, 2);
  t.false(wakesHaLoop(config, topology, worker));
  t.true(hasRoleChangeCallback(config, topology, worker));
  t.regex(render(), /^OWN_CONFIG_URL = None$/m);
  // Without quorum mode the coordinator has no callback at all.
  const on = parseClusterConfig({ synchronousMode: "on" });
  t.false(hasRoleChangeCallback(on, planTopology(on), planTopology(on).groups[0][0]));
});

test("the wakeup stops once synchronous_standby_names waits on no absent member", (t) => {
  const coordinator = topology.groups[0][1];
  const script = renderPromoteCallback(config, topology, coordinator, addressing, { ...containerLayout(config).postgres(coordinator), configFile: "/etc/dpc/patroni.yml" });
  const start = script.indexOf("def waits_on_absent_member");
  const body = script.slice(start, script.indexOf("\n\n\n", start));
  const dir = mkdtempSync(join(tmpdir(), "dpc-callback-"));
  try {
    const file = join(dir, "check.py");
    // The function alone, its query answered by each row below ("setting|streaming members").
    writeFileSync(
      file,
      `import re, sys\nrows = sys.argv[1:]\ndef query(sql):\n    return rows.pop(0)\n${body}\n` +
        `print(",".join(str(waits_on_absent_member()) for _ in list(rows)))\n`,
    );
    const rows = [
      'ANY 2 ("dpc-coordinator-0","dpc-coordinator-2")|dpc-coordinator-2', // promoted: the dead old primary named
      'ANY 1 ("dpc-coordinator-2")|dpc-coordinator-2', // after the resolver run
      "|", // no synchronous standby (non-strict, none streaming)
      "ANY 1 (c2)|c2,c3", // unquoted names
    ];
    t.is(execFileSync("python3", [file, ...rows], { encoding: "utf8" }).trim(), "True,False,False,False");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

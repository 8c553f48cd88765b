// The shipped read-write listener's checks, run by a real HAProxy (Debian's, scripts/install.sh)
// against stand-ins for Patroni's REST API: HAProxy routes to a node only when its GET /primary
// answers 200 (the node holds the leader key) AND the body's role is "primary" (PostgreSQL is out of
// recovery). Patroni answers 200 from the moment it holds the key, 0.1–1 s before the promotion ends
// (api.py do_GET: ha.is_leader()), and a query through PgBouncer once reached such a leader in recovery.
import { spawn } from "node:child_process";
import { createServer, type Server } from "node:http";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import test from "ava";
import { parseClusterConfig, planTopology } from "../../components/spec.ts";
import { renderHaproxyCfg } from "../../components/render/haproxy.ts";
import { haproxyServerStates } from "../../components/haproxy-stats.ts";
import { localAddressing } from "../../local/layout.ts";
import { pollUntil } from "../../local/processes.ts";

interface StandIn {
  status: number;
  role: string;
}

/** A stand-in for one member's REST API: answers every GET with `state.status` and Patroni's body shape. */
async function patroniStandIn(state: StandIn): Promise<{ server: Server; port: number }> {
  const server = createServer((_req, res) => {
    // As Python's json.dumps writes it (", " and ": " between items).
    const body = `{"state": "running", "role": "${state.role}", "server_version": 150020, "xlog": {"location": 1}, "timeline": 2}`;
    res.writeHead(state.status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

/** The rendered read-write listener's check lines (`option httpchk`, `http-check`, `default-server`). */
function readWriteChecks(): string[] {
  const config = parseClusterConfig({});
  const cfg = renderHaproxyCfg(planTopology(config), localAddressing(planTopology(config)));
  const section = cfg.split("\nlisten coordinator_primary\n")[1].split("\n\n")[0].split("\n");
  return section.map((line) => line.trim()).filter((line) => /^(option httpchk|http-check|default-server)/.test(line));
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test("read-write routing: only a leader out of recovery is UP; a leader in recovery comes UP when it leaves it", async (t) => {
  t.timeout(60_000);
  const checks = readWriteChecks();
  t.true(checks.some((line) => line.startsWith("http-check expect status 200")), checks.join("\n"));
  t.true(checks.some((line) => line.startsWith("http-check expect rstring")), checks.join("\n"));
  const members: Record<string, StandIn> = {
    promoted: { status: 200, role: "primary" }, // the leader, out of recovery
    promoting: { status: 200, role: "replica" }, // holds the key, still in recovery
    demoted: { status: 503, role: "primary" }, // lost the key, not yet demoted
    replica: { status: 503, role: "replica" },
  };
  const standIns = await Promise.all(Object.values(members).map((state) => patroniStandIn(state)));
  const stats = await freePort();
  const listen = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "dpc-haproxy-routing-"));
  const cfg = [
    "global",
    "    maxconn 100",
    "defaults",
    "    mode tcp",
    "    timeout connect 1s",
    "    timeout client 10s",
    "    timeout server 10s",
    "    timeout check 2s",
    "listen stats",
    "    mode http",
    `    bind 127.0.0.1:${stats}`,
    "    stats enable",
    "    stats uri /",
    "listen coordinator_primary",
    `    bind 127.0.0.1:${listen}`,
    ...checks.map((line) => `    ${line}`),
    // Clients are never sent here: only the checks matter (each to its stand-in's port).
    ...Object.keys(members).map((name, i) => `    server ${name} 127.0.0.1:9 check port ${standIns[i].port}`),
    "",
  ].join("\n");
  writeFileSync(join(dir, "haproxy.cfg"), cfg);
  const haproxy = spawn("haproxy", ["-db", "-f", join(dir, "haproxy.cfg")], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  haproxy.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const states = async () => Object.fromEntries(await haproxyServerStates(`http://127.0.0.1:${stats}/;csv`, "coordinator_primary", 1000));
  try {
    const settled = await pollUntil(10_000, 100, async () => {
      const now = await states().catch(() => undefined);
      // HAProxy starts every server UP; the failing ones go DOWN after `fall` checks.
      return now && now.promoted === "UP" && ["promoting", "demoted", "replica"].every((name) => now[name] === "DOWN") ? now : undefined;
    });
    t.truthy(settled, `HAProxy did not settle: ${stderr}`);
    t.deepEqual(settled, { promoted: "UP", promoting: "DOWN", demoted: "DOWN", replica: "DOWN" });
    // The promotion ends: the same answer's body now says "primary".
    members.promoting.role = "primary";
    const started = Date.now();
    const up = await pollUntil(5_000, 50, async () => ((await states()).promoting === "UP" ? true : undefined));
    t.true(up === true, "the promoted leader comes UP");
    t.log(`a leader out of recovery is UP ${((Date.now() - started) / 1000).toFixed(2)} s after its /primary body says so`);
  } finally {
    haproxy.kill("SIGTERM");
    standIns.forEach(({ server }) => server.close());
    rmSync(dir, { recursive: true, force: true });
  }
});

// The shipped haproxy.cfg of both container platforms, checked by HAProxy itself (`haproxy -c`) on
// this machine, where none of the backend names resolves: HAProxy must start anyway and leave the
// names to its resolvers (a config that resolves names once, at start, fails here). Needs Debian's
// haproxy (scripts/install.sh).
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { parseClusterConfig, planTopology } from "../../components/spec.ts";
import { containerAddressing, dockerHostNaming, kubernetesHostNaming, type HostNaming } from "../../components/render/container.ts";
import { HAPROXY_RESOLVERS, renderHaproxyCfg } from "../../components/render/haproxy.ts";
import { memberService } from "../../components/platform/kubernetes.ts";
import { localAddressing } from "../../local/layout.ts";

interface Checked {
  code: number;
  output: string;
}

function haproxyCheck(cfg: string): Promise<Checked> {
  const dir = mkdtempSync(join(tmpdir(), "dpc-haproxy-"));
  const file = join(dir, "haproxy.cfg");
  writeFileSync(file, cfg);
  return new Promise((resolve, reject) => {
    execFile("haproxy", ["-c", "-f", file], { timeout: 60_000 }, (error, stdout, stderr) => {
      rmSync(dir, { recursive: true, force: true });
      if (error && (error as NodeJS.ErrnoException).code === "ENOENT") {
        reject(new Error("haproxy not found on PATH: it comes with Debian's `haproxy` package; run scripts/install.sh as root"));
        return;
      }
      resolve({ code: error ? Number(error.code ?? 1) : 0, output: `${stdout}${stderr}` });
    });
  });
}

const config = parseClusterConfig({});
const topology = planTopology(config);
const platforms: Record<string, HostNaming> = {
  docker: dockerHostNaming,
  kubernetes: kubernetesHostNaming(config.kubernetesNamespace, memberService),
};

for (const [platform, naming] of Object.entries(platforms)) {
  test(`haproxy -c passes on the ${platform} haproxy.cfg where no backend name resolves`, async (t) => {
    const cfg = renderHaproxyCfg(topology, containerAddressing(config, topology, naming));
    const names = topology.groups[0].map((node) => naming.host(node.name));
    // Each server follows its name through the platform's resolver, and waits for it to resolve.
    t.regex(cfg, new RegExp(`^resolvers ${HAPROXY_RESOLVERS}\\n    parse-resolv-conf$`, "m"));
    for (const name of names) t.true(cfg.includes(`server ${name.split(".")[0]} ${name}:5432 check`), name);
    t.is(cfg.match(/init-addr libc,none/g)?.length, 2, "both listeners' default-server lines");
    const checked = await haproxyCheck(cfg);
    t.is(checked.code, 0, checked.output);
    t.regex(checked.output, /Configuration file is valid/);
    // The check proves something only if the names really did not resolve here.
    for (const name of names) t.true(checked.output.includes(`could not resolve address '${name}'`), `${name} resolved on this host:\n${checked.output}`);
  });
}

test("the same config without resolvers is what fails where a name does not resolve (the fault fixed)", async (t) => {
  const cfg = renderHaproxyCfg(topology, containerAddressing(config, topology, dockerHostNaming))
    .replace(/^resolvers[\s\S]*?\n\n/m, "")
    .replace(/ resolvers \S+ resolve-prefer ipv4 init-addr libc,none/g, "");
  const checked = await haproxyCheck(cfg);
  t.not(checked.code, 0);
  t.regex(checked.output, /could not resolve address 'dpc-coordinator-0'/);
});

test("backends given as IP addresses (the local runner) get no resolvers", (t) => {
  const cfg = renderHaproxyCfg(topology, localAddressing(topology));
  t.false(cfg.includes("resolvers"));
  t.false(cfg.includes("init-addr"));
});

// npm run local -- up | status | down [--purge] | drill   [--stack NAME] [--state DIR]
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError } from "../components/spec.ts";
import { LocalCluster, LocalClusterError } from "./cluster.ts";
import { runDrill } from "./drill.ts";
import { installPrerequisites } from "./setup.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const USAGE = `usage: npm run local -- <up|status|down|drill> [--stack NAME] [--state DIR] [--purge]
  up      install what this machine lacks (scripts/install.sh), render the stack (default: local) and
          start it as processes on loopback addresses
  status  each group's members, roles, state and lag
  down    stop every process of the cluster and free its ports (--purge also deletes its data)
  drill   (installs first, as up does) on a fresh cluster of its own: cold bootstrap time, failover of the coordinator and of a worker group (median of 3 each, with the breakdown), a planned switchover, lost writes; JSON`;

function option(args: string[], name: string, fallback: string): string {
  const index = args.indexOf(`--${name}`);
  return index >= 0 && args[index + 1] ? args[index + 1] : fallback;
}

async function main(args: string[]): Promise<number> {
  const command = args[0];
  const stack = option(args, "stack", "local");
  const stackFile = join(ROOT, `Pulumi.${stack}.yaml`);
  const stateDir = resolve(option(args, "state", process.env.DPC_STATE_DIR ?? join(ROOT, ".state", stack)));
  if (!["up", "status", "down", "drill"].includes(command)) {
    console.error(USAGE);
    return 2;
  }
  if (!existsSync(stackFile)) {
    console.error(`no stack file ${stackFile}: --stack names a Pulumi.<stack>.yaml in ${ROOT}`);
    return 2;
  }
  if (process.getuid?.() !== 0) {
    console.error("npm run local must run as root: it starts every process as the postgres user (PostgreSQL refuses root)");
    return 2;
  }
  // Starting needs the binaries: install what is missing first (quick when nothing is).
  if (command === "up" || command === "drill") {
    const installed = await installPrerequisites(ROOT);
    if (installed !== 0) return installed;
  }

  if (command === "drill") {
    const report = await runDrill({ stackFile, stateDir: `${stateDir}-drill`, log: (l) => console.error(l) });
    console.log(JSON.stringify(report, null, 2));
    return report.lostWrites === 0 ? 0 : 1;
  }

  const cluster = new LocalCluster({ stackFile, stateDir });
  if (command === "up") {
    try {
      const { seconds, endpoints } = await cluster.up();
      console.log(`\nhealthy after ${seconds.toFixed(1)} s (state in ${stateDir})`);
      console.log(`  PgBouncer (application):  ${endpoints.pgbouncer}`);
      console.log(`  HAProxy read-write:       ${endpoints.readWrite}`);
      console.log(`  HAProxy read-only:        ${endpoints.readOnly}`);
      console.log(`  HAProxy stats:            ${endpoints.haproxyStats}`);
      console.log(`  Prometheus:               ${endpoints.prometheus}`);
      console.log(`  etcd:                     ${endpoints.etcd.join(",")}`);
      console.log(`\n  PGPASSFILE=${endpoints.pgpassFile} psql "${endpoints.pgbouncer}"`);
      return 0;
    } catch (error) {
      console.error(`\nup failed: ${(error as Error).message}`);
      const { stopped } = await cluster.down();
      console.error(`stopped the ${stopped} process(es) this attempt had started`);
      return 1;
    }
  }
  if (command === "status") {
    for (const group of await cluster.status()) {
      console.log(`${group.name} (citus group ${group.group})`);
      if (group.members.length === 0) console.log("  (no member answers)");
      for (const m of group.members) {
        console.log(`  ${m.name.padEnd(24)} ${m.host.padEnd(12)} ${m.role.padEnd(14)} ${m.state.padEnd(10)} lag ${m.lag ?? "-"}`);
      }
    }
    return 0;
  }
  const { stopped, portsStillTaken } = await cluster.down(args.includes("--purge"));
  console.log(`stopped ${stopped} process(es)${args.includes("--purge") ? `, removed ${stateDir}` : ""}`);
  if (portsStillTaken.length > 0) {
    console.error(`ports still taken by other processes: ${portsStillTaken.join(", ")}`);
    return 1;
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    if (error instanceof ConfigError || error instanceof LocalClusterError) console.error(error.message);
    else console.error(error);
    process.exit(1);
  },
);

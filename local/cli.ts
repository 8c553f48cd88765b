// npm run local -- up | status | down [--purge] | drill | rotate-password NAME... [--password-file F]
//                   | baseline up|down [--purge]   [--stack NAME] [--state DIR]
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError } from "../components/spec.ts";
import { BaselineError, BaselineNode } from "./baseline.ts";
import { LocalCluster, LocalClusterError } from "./cluster.ts";
import { runDrill } from "./drill.ts";
import { PostgresUserMissing } from "./processes.ts";
import { installPrerequisites } from "./setup.ts";
import { parsePasswordNames, pendingSecretsPath, rotateLocalPasswords } from "./rotate.ts";
import { pendingWorkerGroupsChange, scaleLocalCluster } from "./scale.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const USAGE = `usage: npm run local -- <up|status|down|drill|rotate-password|baseline up|baseline down> [--stack NAME] [--state DIR] [--purge]
  up      install what this machine lacks (scripts/install.sh), render the stack (default: local) and
          start it as processes on loopback addresses; on a running cluster, apply the stack's changes
          (PostgreSQL parameters through Patroni, rolling restarts with a switchover)
  status  each group's members, roles, state and lag
  down    stop every process of the cluster and free its ports (--purge also deletes its data)
  drill   (installs first, as up does) on a fresh cluster of its own: cold bootstrap time, failover of the coordinator and of a worker group (median of 3 each, with the breakdown), a planned switchover, lost writes; JSON
  rotate-password NAME... | all [--password-file FILE]
          on the running cluster, a new generated password (or FILE's first line, for one NAME) for
          superuser, replication, rewind, restApi or app: roles first, then Patroni, PgBouncer, secrets.json
          and pgpass. \`up\` on a running cluster completes a rotation that was interrupted
  baseline up    a plain PostgreSQL node for the benchmark to compare with (no Citus, the stack's settings,
                 the same schema) on 127.N.4.1:5432, state in <state>/baseline; prints its URL
  baseline down  stop it (--purge also deletes its data)`;

function option(args: string[], name: string, fallback: string): string {
  const index = args.indexOf(`--${name}`);
  return index >= 0 && args[index + 1] ? args[index + 1] : fallback;
}

async function main(args: string[]): Promise<number> {
  const command = args[0];
  const stack = option(args, "stack", "local");
  const stackFile = join(ROOT, `Pulumi.${stack}.yaml`);
  const stateDir = resolve(option(args, "state", process.env.DPC_STATE_DIR ?? join(ROOT, ".state", stack)));
  const baselineCommand = command === "baseline" ? args[1] : undefined;
  if (!["up", "status", "down", "drill", "rotate-password", "baseline"].includes(command) || (command === "baseline" && !["up", "down"].includes(baselineCommand ?? ""))) {
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
  // A rotation: asked for, or interrupted and completed by `up` on the running cluster (whose
  // binaries are installed: no install step).
  const rotation = command === "rotate-password" || (command === "up" && existsSync(pendingSecretsPath(stateDir)));
  if (rotation && (command === "rotate-password" || new LocalCluster({ stackFile, stateDir }).isRunning())) {
    const cluster = new LocalCluster({ stackFile, stateDir });
    const names = command === "rotate-password" ? parsePasswordNames(args.slice(1).filter((a, i, all) => !a.startsWith("--") && !all[i - 1]?.startsWith("--"))) : [];
    const file = option(args, "password-file", "");
    if (file && names.length !== 1) throw new LocalClusterError("--password-file sets one password: name exactly one of superuser, replication, rewind, restApi, app");
    const given = file ? { [names[0]]: readFileSync(file, "utf8").split("\n")[0] } : undefined;
    const result = await rotateLocalPasswords(cluster, names, { given, log: (line) => console.log(line) });
    console.log(result.changed.length === 0 ? "no password to rotate" : `rotated ${result.changed.join(", ")} (${result.steps.join(" -> ")}); the new passwords are in ${cluster.paths.secretsFile}`);
    return 0;
  }
  if (rotation) {
    // Stopped half-way through a rotation: the roles may already have the new passwords, which this
    // start does not use (it renders secrets.json's). Refuse rather than start a cluster whose
    // replicas and PgBouncer could be locked out.
    throw new LocalClusterError(
      `a password rotation is pending (${pendingSecretsPath(stateDir)}) but the cluster is not running: ` +
        "a rotation completes only on a running cluster. If it never reached the database, delete that file and run `up` again",
    );
  }
  // Starting needs the binaries: install what is missing first (quick when nothing is).
  if (command === "up" || command === "drill" || baselineCommand === "up") {
    const installed = await installPrerequisites(ROOT);
    if (installed !== 0) return installed;
  }

  if (command === "drill") {
    const report = await runDrill({ stackFile, stateDir: `${stateDir}-drill`, log: (l) => console.error(l) });
    console.log(JSON.stringify(report, null, 2));
    return report.lostWrites === 0 ? 0 : 1;
  }

  if (command === "baseline") {
    const node = new BaselineNode({ stackFile, dir: join(stateDir, "baseline") });
    if (baselineCommand === "up") {
      const { seconds } = await node.up();
      console.log(`\nbaseline ready after ${seconds.toFixed(1)} s (state in ${node.paths.dir})`);
      console.log(`  PGPASSFILE=${node.paths.pgpassFile} psql "${node.publicUrl()}"`);
      console.log(`  npm run bench -- --url ... --baseline-url "${node.publicUrl()}"   (password: PGPASSFILE as above)`);
      return 0;
    }
    const { stopped } = await node.down(args.includes("--purge"));
    console.log(`stopped ${stopped} baseline process(es)${args.includes("--purge") ? `, removed ${node.paths.dir}` : ""}`);
    return 0;
  }

  const cluster = new LocalCluster({ stackFile, stateDir });
  // `up` on a running cluster whose stack changed workerGroups: scale it (local/scale.ts).
  const workerChange = command === "up" && cluster.isRunning() ? pendingWorkerGroupsChange(cluster) : undefined;
  if (workerChange) {
    const result = await scaleLocalCluster(cluster, workerChange);
    const job = result.scaleOut?.job ?? result.drain?.job;
    const moves = (job?.moves ?? 0) + (result.drain?.rebalance?.moves ?? 0);
    console.log(`\nworker groups ${result.from} -> ${result.to} in ${result.seconds.toFixed(1)} s: ${moves} shard move(s)${job ? ` (${job.mode})` : ""}`);
    return 0;
  }
  if (command === "up") {
    const wasRunning = cluster.isRunning();
    try {
      const { seconds, endpoints, mode } = await cluster.up();
      console.log(mode === "changed" ? `\nchanges applied in ${seconds.toFixed(1)} s (state in ${stateDir})` : `\nhealthy after ${seconds.toFixed(1)} s (state in ${stateDir})`);
      console.log(`  PgBouncer (application):  ${endpoints.pgbouncer}`);
      console.log(`  HAProxy read-write:       ${endpoints.readWrite}`);
      console.log(`  HAProxy read-only:        ${endpoints.readOnly}`);
      console.log(`  HAProxy stats:            ${endpoints.haproxyStats}`);
      console.log(`  Prometheus:               ${endpoints.prometheus}`);
      console.log(`  etcd:                     ${endpoints.etcd.join(",")}`);
      console.log(`\n  PGSSLROOTCERT=${endpoints.caFile} PGPASSFILE=${endpoints.pgpassFile} psql "${endpoints.pgbouncer}"`);
      return 0;
    } catch (error) {
      console.error(`\nup failed: ${(error as Error).message}`);
      // A running cluster whose changes failed keeps running: only a fresh start is undone.
      if (cluster.isRunning() && wasRunning) return 1;
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
    if (error instanceof ConfigError || error instanceof LocalClusterError || error instanceof BaselineError || error instanceof PostgresUserMissing) console.error(error.message);
    else console.error(error);
    process.exit(1);
  },
);

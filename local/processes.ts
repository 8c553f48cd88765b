// Starting, finding and stopping the local cluster's processes. Every process runs as `postgres`
// (PostgreSQL and PgBouncer refuse root) and names a path under the state directory on its command
// line, so `down` finds them all by scanning /proc, also after a crash or a half-finished `up`.
import { spawn, spawnSync } from "node:child_process";
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";

export const RUN_AS = "postgres";
/** The postgres user is missing: the machine is not installed (the CLI prints only the message). */
export class PostgresUserMissing extends Error {
  override name = "PostgresUserMissing";
}

/**
 * The postgres user's uid and gid, from /etc/passwd.
 * @throws PostgresUserMissing, naming the install script, when the user does not exist.
 */
export function postgresIds(): { uid: number; gid: number } {
  const line = readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .find((l) => l.startsWith(`${RUN_AS}:`));
  if (!line) throw new PostgresUserMissing(`user '${RUN_AS}' does not exist: run scripts/install.sh (as root) first`);
  const [, , uid, gid] = line.split(":");
  return { uid: Number(uid), gid: Number(gid) };
}

/** Debian's Patroni must run with Debian's python (the PATH python3 may not see its modules). */
export const SYSTEM_PYTHON = "/usr/bin/python3";

/**
 * Runs Patroni as a child subreaper that reaps at once: Patroni starts PostgreSQL detached (its
 * postmaster is orphaned), and psutil counts an unreaped zombie as running. In a container Patroni
 * is PID 1 and reaps it itself (patroni/__main__.py); here PID 1 took 1.0-1.8 s, and a graceful
 * demote that still saw the postmaster after its 1 s poll (postgresql/__init__.py _do_stop,
 * STOP_POLLING_INTERVAL) ran on_shutdown, which sleeps 1 s more before releasing the leader key
 * (ha.py demote): every switchover here paused clients about 1.1 s longer than in a container.
 * tini forwards SIGTERM and friends to Patroni and exits with its status.
 */
export const PATRONI_REAPER = ["/usr/bin/tini", "-s", "--"];

/** setpriv's arguments that run the rest of the command line as `postgres`. */
const SETPRIV_AS_POSTGRES = ["--reuid", RUN_AS, "--regid", RUN_AS, "--init-groups"];

/** A small, fixed environment for postgres's processes (none of the invoking shell's variables). */
function postgresEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C.UTF-8", HOME: "/var/lib/postgresql", ...extra };
}

export function detectPostgresMajor(root = "/usr/lib/postgresql"): number {
  const majors = existsSync(root)
    ? readdirSync(root).map(Number).filter((major) => existsSync(join(root, String(major), "bin", "postgres")))
    : [];
  if (majors.length === 0) {
    throw new Error(`no PostgreSQL server found under ${root}: run scripts/install.sh (as root) first`);
  }
  return Math.max(...majors);
}

export interface StartedProcess {
  name: string;
  pid: number;
  logFile: string;
}

/** Starts a long-running process as `postgres`, detached, with output appended to its log file. */
export function startAsPostgres(name: string, command: string[], logFile: string, env: NodeJS.ProcessEnv = {}): StartedProcess {
  const log = openSync(logFile, "a", 0o600);
  // setpriv execs the command, so the PID we get is the process's own.
  const child = spawn("setpriv", [...SETPRIV_AS_POSTGRES, ...command], {
    detached: true,
    stdio: ["ignore", log, log],
    env: postgresEnv(env),
  });
  closeSync(log);
  if (child.pid === undefined) throw new Error(`could not start ${name}: ${command[0]}`);
  child.unref();
  return { name, pid: child.pid, logFile };
}

/** Runs a command as `postgres` to completion. */
export function runAsPostgres(command: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync("setpriv", [...SETPRIV_AS_POSTGRES, ...command], {
    encoding: "utf8",
    env: postgresEnv(env),
  });
}

/** Runs a command as `postgres` to completion without blocking the event loop; output merged. */
export function runAsPostgresAsync(command: string[]): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn("setpriv", [...SETPRIV_AS_POSTGRES, ...command], {
      stdio: ["ignore", "pipe", "pipe"],
      env: postgresEnv(),
    });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    child.on("close", (status) => resolve({ status, output: output.trim() }));
  });
}

/** True for a live process; a zombie (reaped slowly by some inits) counts as dead. */
export function isAlive(pid: number): boolean {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    return !/^State:\s+Z/m.test(status);
  } catch {
    return false;
  }
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
  } catch {
    return "";
  }
}

/** Every live process whose command line names a path under the state directory. */
export function processesUnder(stateDir: string): { pid: number; command: string }[] {
  const found: { pid: number; command: string }[] = [];
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    const command = commandLine(pid);
    if (command.includes(stateDir + "/") && isAlive(pid)) found.push({ pid, command });
  }
  return found;
}

export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Calls `check` every `intervalMs` until it returns a value; undefined when `timeoutMs` passes first. */
export async function pollUntil<T>(timeoutMs: number, intervalMs: number, check: () => Promise<T | undefined> | T | undefined): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const result = await check();
    if (result !== undefined) return result;
    await sleep(intervalMs);
  }
  return undefined;
}

/** SIGTERM, then SIGKILL after the grace period, for every process under the state directory. */
export async function stopEverythingUnder(stateDir: string, graceMs = 15000): Promise<number> {
  const initial = processesUnder(stateDir);
  // Patroni first: it stops its PostgreSQL cleanly and must not restart it meanwhile.
  const patronis = initial.filter((p) => p.command.includes("patroni"));
  for (const p of patronis) signal(p.pid, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && patronis.some((p) => isAlive(p.pid))) await sleep(100);
  for (const p of processesUnder(stateDir)) signal(p.pid, "SIGTERM");
  while (Date.now() < deadline && processesUnder(stateDir).length > 0) await sleep(100);
  for (const p of processesUnder(stateDir)) signal(p.pid, "SIGKILL");
  const killDeadline = Date.now() + 5000;
  while (Date.now() < killDeadline && processesUnder(stateDir).length > 0) await sleep(50);
  return initial.length;
}

/** True when nothing can bind host:port (another process listens there). */
export function portInUse(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(true));
    server.once("listening", () => server.close(() => resolve(false)));
    server.listen({ host, port, exclusive: true });
  });
}

/** The last lines of a log file, for error messages. */
export function tail(file: string, lines = 5): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

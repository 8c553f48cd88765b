// The Docker engine the docker test runs against: our own dockerd, started and stopped by
// scripts/docker-install.sh (state under /var/lib/dpc-docker, socket /run/dpc-docker.sock).
import { spawnSync } from "node:child_process";
import { resolve } from "node:path";

const SCRIPT = resolve(import.meta.dirname, "../../scripts/docker-install.sh");

export interface Engine {
  /** unix socket path of the daemon. */
  socketPath: string;
}

function run(action: "start" | "base" | "stop"): { ok: boolean; stdout: string; stderr: string } {
  const result = spawnSync("bash", [SCRIPT, action], { encoding: "utf8", timeout: 10 * 60_000 });
  return { ok: result.status === 0, stdout: result.stdout ?? "", stderr: (result.stderr ?? "") + (result.error ? String(result.error) : "") };
}

/**
 * Installs docker.io + debootstrap if needed, starts our dockerd, builds the Debian 13 base image if
 * missing. Returns undefined with the reason when the engine cannot run on this machine.
 */
export function startEngine(log: (line: string) => void): Engine | { unavailable: string } {
  if (process.getuid?.() !== 0) return { unavailable: "not root: installing docker.io and starting dockerd need root" };
  const started = run("start");
  for (const line of started.stderr.trim().split("\n")) if (line) log(line);
  if (!started.ok) return { unavailable: `dockerd could not start: ${started.stderr.trim().split("\n").slice(-3).join(" | ")}` };
  const host = /DOCKER_HOST=unix:\/\/(\S+)/.exec(started.stdout)?.[1];
  if (!host) return { unavailable: `scripts/docker-install.sh start printed no DOCKER_HOST: ${started.stdout}` };
  const base = run("base");
  for (const line of base.stderr.trim().split("\n")) if (line) log(line);
  if (!base.ok) {
    // Nothing else will stop the daemon: the test never starts.
    stopEngine(log);
    throw new Error(`building the Debian 13 base image failed: ${base.stderr}`);
  }
  return { socketPath: host };
}

export function stopEngine(log: (line: string) => void): boolean {
  const stopped = run("stop");
  for (const line of stopped.stderr.trim().split("\n")) if (line) log(line);
  return stopped.ok;
}

// Runs pgbench select-only (a `SELECT 1` script, no tables needed) against a URL and reads its TPS.
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** pgbench on PATH, else the newest under /usr/lib/postgresql (Debian keeps it off PATH). */
export function findPgbench(): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    const candidate = join(dir, "pgbench");
    if (dir && existsSync(candidate)) return candidate;
  }
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return undefined;
  const majors = readdirSync(root).filter((name) => /^\d+$/.test(name)).sort((a, b) => Number(b) - Number(a));
  return majors.map((major) => join(root, major, "bin", "pgbench")).find((path) => existsSync(path));
}

/** Reads "tps = 12345.6 (without initial connection time)" from pgbench's output. */
export function parsePgbenchTps(output: string): number | undefined {
  const match = /tps = ([\d.]+) \(without initial connection time\)/.exec(output) ?? /tps = ([\d.]+)/.exec(output);
  return match ? Number(match[1]) : undefined;
}

export interface PgbenchRun {
  tps: number;
  command: string;
}

/**
 * `threads` is pgbench's -j: pass the load generator's own thread count so both drive the same clients
 * from the same number of threads. The password goes through PGPASSWORD, not the command line
 * (visible in process lists).
 */
export async function runPgbenchSelectOne(pgbench: string, url: string, clients: number, threads: number, seconds: number): Promise<PgbenchRun> {
  const parsed = new URL(url);
  const password = decodeURIComponent(parsed.password);
  parsed.password = "";
  const dir = mkdtempSync(join(tmpdir(), "dpc-pgbench-"));
  try {
    const script = join(dir, "select1.sql");
    writeFileSync(script, "SELECT 1;\n");
    const args = ["-n", "-f", script, "-c", String(clients), "-j", String(threads), "-T", String(seconds), parsed.toString()];
    const { stdout } = await run(pgbench, args, {
      env: { ...process.env, ...(password ? { PGPASSWORD: password } : {}) },
      timeout: (seconds + 60) * 1000,
    });
    const tps = parsePgbenchTps(stdout);
    if (tps === undefined) throw new Error(`could not read tps from pgbench output:\n${stdout}`);
    return { tps, command: `pgbench -n -f select1.sql -c ${clients} -j ${threads} -T ${seconds} <url>` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

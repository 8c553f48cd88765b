// The machine set-up before `up` and `drill`: scripts/install.sh, which installs what this machine
// lacks (Debian packages, pgvector, Citus), prints its progress, and refuses with one message when it
// cannot (not root, not Debian 12/13, no package archive). Idempotent: about 0.4 s when nothing is missing.
import { spawn } from "node:child_process";
import { join } from "node:path";

/**
 * Runs `bash <root>/scripts/install.sh`, all its output on this process's stderr (stdout stays for
 * the command's own result: drill prints JSON there).
 * Resolves to its exit status (0: everything installed; 1: refused or failed, already explained).
 */
export function installPrerequisites(root: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [join(root, "scripts", "install.sh")], { cwd: root, stdio: ["ignore", 2, 2] });
    child.on("error", reject);
    child.on("close", (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

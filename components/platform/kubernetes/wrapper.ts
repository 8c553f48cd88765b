// What a pod runs before its process: MEMBER_WRAPPER picks the pod's own member's files, environment
// and command out of its group's Secret (memberSecretData), so that a StatefulSet's pods can share one
// template while every member keeps its own rendered files. Also the kubelet's `$(VAR)` expansion,
// which every container command goes through.
import { CONTAINER_PATHS } from "../../render/container.ts";
import type { WorkloadFile, WorkloadMember } from "../types.ts";

/** Where the group's Secret is mounted (read-only) in every pod. */
export const STAGING_DIR = "/run/dpc/files";
/** Every delivered file lives under this directory: a writable emptyDir in the pod. */
export const FILES_DIR = CONTAINER_PATHS.configDir;
/** Environment variable holding the pod's name, for commands shared by a StatefulSet's pods. */
export const MEMBER_VAR = "DPC_MEMBER";

/**
 * The shell lines both scripts below share: install the member's files listed in
 * `<member>.files` (lines `MODE KEY PATH`) from the staging directory, under umask 077.
 */
const INSTALL_FILES = `umask 077
while read -r mode key path; do
  mkdir -p "$root\${path%/*}"
  cp "$staging/$key" "$root$path"
  chmod "$mode" "$root$path"
done < "$staging/$member.files"
`;

/**
 * The container command of a pod whose member has files or environment: POSIX sh, run as
 * `sh -c MEMBER_WRAPPER dpc-member STAGING_DIR`. The member is $HOSTNAME (a StatefulSet pod's name,
 * or the hostname a Deployment sets). From the staging directory (the group's Secret) it reads:
 * - `<member>.files`: lines `<mode> <key> <absolute path>`; copies each key to its path (created
 *   under umask 077, then chmod'ed, so a secret file is never readable by others, even briefly);
 * - `<member>.env`: lines `NAME=value`, exported;
 * - `<member>.command`: the argv, one argument a line; exec'ed, so the process keeps the pod's PID 1
 *   and gets its stop signal.
 * DPC_ROOT (unset in pods) prefixes every target path, so that tests can run it in a temp dir.
 * Keep `$(` and `$$` out of it: the kubelet would expand them in a container command.
 */
export const MEMBER_WRAPPER = `set -eu
staging="$1"
member="$HOSTNAME"
root="\${DPC_ROOT:-}"
if [ ! -f "$staging/$member.command" ]; then
  echo "dpc-member: no member named $member in $staging" >&2
  exit 1
fi
${INSTALL_FILES}while IFS= read -r line; do
  export "$line"
done < "$staging/$member.env"
set --
while IFS= read -r arg; do
  set -- "$@" "$arg"
done < "$staging/$member.command"
exec "$@"
`;

/**
 * The init container's command for a group whose image has no shell (WorkloadGroup.shell false:
 * etcd): POSIX sh in the database image, run as `sh -c FILES_INSTALLER dpc-files STAGING_DIR`. It
 * installs the member's files (`<member>.files`, as MEMBER_WRAPPER does) into the pod's FILES_DIR,
 * which the main container then mounts; the main container runs its command itself.
 */
export const FILES_INSTALLER = `set -eu
staging="$1"
member="$HOSTNAME"
root="\${DPC_ROOT:-}"
if [ ! -f "$staging/$member.files" ]; then
  echo "dpc-files: no member named $member in $staging" >&2
  exit 1
fi
${INSTALL_FILES}`;

/** Modes as the docker platform delivers them. */
export function fileMode(file: WorkloadFile): string {
  if (file.secret) return file.executable ? "0700" : "0600";
  return file.executable ? "0755" : "0644";
}

// Paths and Secret keys the wrapper reads with `read`: no spaces, no newlines, no shell syntax.
const SAFE_PATH = /^\/[A-Za-z0-9._/-]+$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

const lines = (items: string[]) => items.map((item) => `${item}\n`).join("");

/**
 * The group Secret's data: for each member, its files (`<member>__<basename>`) and the wrapper's
 * `<member>.files`, `<member>.env` and `<member>.command`. Member names are DNS labels (no `.` or
 * `_`), so the two kinds of key never collide. Throws on what the wrapper could not carry.
 */
export function memberSecretData(members: WorkloadMember[], filesPerMember: WorkloadFile[][]): Record<string, string> {
  const data: Record<string, string> = {};
  members.forEach((member, i) => {
    const manifest: string[] = [];
    for (const file of filesPerMember[i]) {
      if (!SAFE_PATH.test(file.path) || !file.path.startsWith(`${FILES_DIR}/`) || file.path.includes("/../")) {
        throw new Error(`kubernetes platform: ${member.name}: file ${JSON.stringify(file.path)}: allowed: a path under ${FILES_DIR}/ of letters, digits and ._-/`);
      }
      const key = `${member.name}__${file.path.slice(file.path.lastIndexOf("/") + 1)}`;
      if (key in data) throw new Error(`kubernetes platform: ${member.name}: two files named ${key.split("__")[1]}`);
      data[key] = file.content;
      manifest.push(`${fileMode(file)} ${key} ${file.path}`);
    }
    const env = Object.entries(member.env ?? {});
    for (const [name, value] of env) {
      if (!ENV_NAME.test(name) || value.includes("\n")) throw new Error(`kubernetes platform: ${member.name}: environment variable ${name}: a name of [A-Za-z0-9_] and a one-line value`);
    }
    if (member.command.some((arg) => arg.includes("\n"))) throw new Error(`kubernetes platform: ${member.name}: a command argument holds a newline`);
    data[`${member.name}.files`] = lines(manifest);
    data[`${member.name}.env`] = lines(env.map(([name, value]) => `${name}=${value}`));
    data[`${member.name}.command`] = lines(member.command);
  });
  return data;
}

/** kubelet expands `$(VAR)` in a container's command; `$$` stands for a literal `$`. */
export function escapeForKubelet(arg: string): string {
  return arg.replaceAll("$", () => "$$");
}

/** The kubelet's expansion of `$(VAR)` and `$$` (unknown variables stay as written). */
export function expandLikeKubelet(arg: string, vars: Record<string, string>): string {
  return arg.replace(/\$(\$|\(([A-Za-z_][A-Za-z0-9_]*)\))/g, (whole, _, name: string | undefined) =>
    name === undefined ? "$" : (vars[name] ?? whole),
  );
}

/**
 * One command line for all `members`, in which each member's own name is `$(DPC_MEMBER)` (the pod
 * name): what etcd needs, whose upstream image has no shell to run MEMBER_WRAPPER. Only arguments
 * that differ between members are templated; undefined when that does not reproduce every member's
 * command exactly.
 */
export function sharedCommand(members: WorkloadMember[]): string[] | undefined {
  const [first] = members;
  if (members.some((m) => m.command.length !== first.command.length)) return undefined;
  const template = first.command.map((arg, j) =>
    members.every((m) => m.command[j] === arg)
      ? escapeForKubelet(arg)
      : escapeForKubelet(arg).split(first.name).join(`$(${MEMBER_VAR})`),
  );
  const fits = members.every((m) => template.every((arg, j) => expandLikeKubelet(arg, { [MEMBER_VAR]: m.name }) === m.command[j]));
  return fits ? template : undefined;
}


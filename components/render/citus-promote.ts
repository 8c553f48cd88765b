// The worker's "promoted" notice to the coordinator, sent as soon as PostgreSQL has left recovery.
//
// Patroni moves a Citus worker group's primary in pg_dist_node in two steps (patroni/ha.py,
// postgresql/mpp/citus.py, 4.0.7): before promoting, the new primary POSTs `before_promote` to the
// coordinator leader's REST API, which opens a transaction with citus_update_node (queries to the
// group wait on its locks); `after_promote` commits it. Patroni sends `after_promote` only from the
// HA loop that first sees its own role as "primary": its promote waits `loop_wait` (1 s) polling
// pg_controldata once, so with loop_wait 1 that is the next HA loop but one, 1.5-2.5 s after
// PostgreSQL left recovery (measured on the local cluster). The same event, sent by this
// `on_role_change` callback once the node answers out of recovery, lets the coordinator commit at
// once; Patroni's own `after_promote` later finds nothing left to do.
//
// In a quorum-mode group the same callback also wakes its own Patroni's HA loop once the promote
// has finished (every member of such a group runs it, the coordinator's too; patroni.ts wakesHaLoop).
import type { ClusterConfig, PostgresNode, Topology } from "../spec.ts";
import { wakesHaLoop } from "./patroni.ts";
import { PORTS, type Addressing, type PostgresLayout } from "./types.ts";

/** Where the callback runs: the node's Patroni config (read for the REST credentials) and PostgreSQL. */
export interface PromoteCallbackPaths extends PostgresLayout {
  configFile: string;
}

/**
 * The on_role_change callback (patroni.ts hasRoleChangeCallback): a Python 3 script (Patroni's own
 * interpreter; PyYAML comes with Patroni). Patroni runs it as `SCRIPT on_role_change ROLE SCOPE`;
 * for ROLE "primary" it waits, at most `ttl` seconds, until PostgreSQL answers out of recovery on
 * its unix socket, then POSTs `after_promote` to every coordinator member's `/citus` (only the
 * leader acts on it; Patroni checks there that the sender holds its group's leader key). It reads
 * the REST password from patroni.yml, so it holds no secret itself. With the layout's TLS the REST API
 * speaks HTTPS: the script verifies each coordinator member against the node's CA file and by name
 * (ssl.create_default_context(cafile=...): CERT_REQUIRED and check_hostname).
 */
export function renderPromoteCallback(config: ClusterConfig, topology: Topology, node: PostgresNode, addressing: Addressing, paths: PromoteCallbackPaths): string {
  const scheme = paths.tls ? "https" : "http";
  const coordinators = node.group > 0 ? topology.groups[0].map((n) => `${scheme}://${addressing.postgres(n).connect}:${PORTS.patroniRest}/citus`) : [];
  const ownConfigUrl = `${scheme}://${addressing.postgres(node).connect}:${PORTS.patroniRest}/config`;
  return `#!/usr/bin/env python3
# Rendered by distributed-postgres-cluster; do not edit (components/render/citus-promote.ts).
# Patroni's on_role_change callback on ${node.name}: once PostgreSQL is out of recovery after a
# promotion, tells the coordinator "after_promote" (a Citus worker) instead of Patroni's next HA loop
# but one, and wakes its own Patroni's HA loop once the promote has finished (a quorum-mode group).
import base64, json, os, re, ssl, subprocess, sys, threading, time, urllib.request
import yaml

CONFIG_FILE = ${JSON.stringify(paths.configFile)}
PSQL = ${JSON.stringify(`${paths.binDir}/psql`)}
SOCKET_DIR = ${JSON.stringify(paths.socketDir)}
PORT = "${PORTS.postgres}"
GROUP = ${node.group}
COORDINATORS = ${JSON.stringify(coordinators)}
# This node's own REST API, whose HA loop a no-op PATCH /config wakes (None: not in quorum mode).
OWN_CONFIG_URL = ${wakesHaLoop(config, topology, node) ? JSON.stringify(ownConfigUrl) : "None"}
# The cluster CA the coordinators' REST certificates are verified against (None: plain HTTP).
CA_FILE = ${paths.tls ? JSON.stringify(paths.tls.caFile) : "None"}


def query(sql):
    try:
        result = subprocess.run([PSQL, "-X", "-A", "-t", "-q", "-h", SOCKET_DIR, "-p", PORT, "-d", "postgres",
                                 "-c", sql], capture_output=True, text=True, timeout=2)
        return result.stdout.strip() if result.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def out_of_recovery():
    return query("SELECT pg_is_in_recovery()") == "f"


def waits_on_absent_member():
    """Whether synchronous_standby_names names a member that does not stream from this node."""
    row = query("SELECT current_setting('synchronous_standby_names') || '|' || "
                "coalesce((SELECT string_agg(application_name, ',') FROM pg_stat_replication), '')")
    if row is None:
        return True
    names, streaming = row.split("|", 1)
    listed = re.search(r"\\((.*)\\)", names)  # "ANY 2 (a,b)" (Patroni quotes names that need it)
    listed = {n.strip().strip('"') for n in (listed.group(1) if listed else names).split(",")} - {"", "*"}
    return bool(listed - set(streaming.split(",")))


def spawned_at():
    """time.monotonic() when Patroni started this script, right after \`pg_ctl promote\` returned (its
    promote thread then polls pg_controldata once and sleeps loop_wait): the process's start time
    (/proc/self/stat field 22, clock ticks since boot), not when Python got here (0.1-0.8 s later
    on a loaded machine)."""
    try:
        with open("/proc/self/stat") as f:
            stat = f.read()
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        ticks = int(stat[stat.rindex(")") + 2:].split()[19])
        return time.monotonic() - max(0.0, uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return time.monotonic()


def wake_ha_loop(started, loop_wait, authorization):
    """No-op PATCH /config every 0.15 s from loop_wait after the promotion (when Patroni's promote
    thread returns) until no absent member is waited on, at most 2 loop_wait + 0.5 s. A wakeup
    while the thread still runs costs one HA loop that finds it busy."""
    woken = 0
    while time.monotonic() - started < 2 * loop_wait + 0.5:
        delay = started + loop_wait + 0.15 * woken - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        request = urllib.request.Request(OWN_CONFIG_URL, data=b'{"dpc_wake_ha_loop": null}', method="PATCH",
                                         headers={"Content-Type": "application/json", "Authorization": authorization})
        try:
            context = ssl.create_default_context(cafile=CA_FILE) if CA_FILE else None
            urllib.request.urlopen(request, timeout=2, context=context).close()
        except Exception as error:
            return "HA loop wakeup failed: %s" % error
        woken += 1
        time.sleep(0.05)  # the woken loop's resolver run, then its reload
        if not waits_on_absent_member():
            break
    return "HA loop woken %d times, the last %.2f s after the role change" % (woken, time.monotonic() - started)


def post(url, body, authorization, sent):
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", "Authorization": authorization})
    try:
        context = ssl.create_default_context(cafile=CA_FILE) if CA_FILE else None
        with urllib.request.urlopen(request, timeout=2, context=context) as response:
            sent.append("%s %d" % (url, response.status))
    except Exception as error:  # a dead coordinator member: the others are tried all the same
        sent.append("%s %s" % (url, error))


def main(argv):
    if len(argv) < 3 or argv[1] != "on_role_change" or argv[2] != "primary":
        return 0
    with open(CONFIG_FILE) as f:
        config = yaml.safe_load(f)
    dcs = config.get("bootstrap", {}).get("dcs", {})
    ttl = dcs.get("ttl", ${config.patroniTtl})
    started = spawned_at()
    while not out_of_recovery():
        if time.monotonic() - started > ttl:
            print("citus after_promote: still in recovery after %s s; left to Patroni" % ttl, file=sys.stderr)
            return 1
        time.sleep(0.05)
    auth = config["restapi"]["authentication"]
    authorization = "Basic " + base64.b64encode(("%s:%s" % (auth["username"], auth["password"])).encode()).decode()
    if COORDINATORS:
        body = json.dumps({"type": "after_promote", "group": GROUP, "leader": config["name"],
                           "timeout": ttl, "cooldown": dcs.get("retry_timeout", ${config.patroniRetryTimeout})}).encode()
        sent = []
        threads = [threading.Thread(target=post, args=(url, body, authorization, sent)) for url in COORDINATORS]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        print("citus after_promote %.2f s after the role change: %s" % (time.monotonic() - started, "; ".join(sent)), file=sys.stderr)
    if OWN_CONFIG_URL:
        print(wake_ha_loop(started, dcs.get("loop_wait", ${config.patroniLoopWait}), authorization), file=sys.stderr)
    return 0


sys.exit(main(sys.argv))
`;
}

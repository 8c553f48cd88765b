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
import type { ClusterConfig, PostgresNode, Topology } from "../spec.ts";
import { PORTS, type Addressing, type PostgresLayout } from "./types.ts";

/** Where the callback runs: the node's Patroni config (read for the REST credentials) and PostgreSQL. */
export interface PromoteCallbackPaths extends PostgresLayout {
  configFile: string;
}

/**
 * The on_role_change callback of a worker node (Citus group > 0): a Python 3 script (Patroni's own
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
  const coordinators = topology.groups[0].map((n) => `${scheme}://${addressing.postgres(n).connect}:${PORTS.patroniRest}/citus`);
  return `#!/usr/bin/env python3
# Rendered by distributed-postgres-cluster; do not edit (components/render/citus-promote.ts).
# Patroni's on_role_change callback on Citus worker ${node.name}: tells the coordinator "after_promote"
# as soon as PostgreSQL is out of recovery, instead of Patroni's next HA loop but one.
import base64, json, ssl, subprocess, sys, threading, time, urllib.request
import yaml

CONFIG_FILE = ${JSON.stringify(paths.configFile)}
PSQL = ${JSON.stringify(`${paths.binDir}/psql`)}
SOCKET_DIR = ${JSON.stringify(paths.socketDir)}
PORT = "${PORTS.postgres}"
GROUP = ${node.group}
COORDINATORS = ${JSON.stringify(coordinators)}
# The cluster CA the coordinators' REST certificates are verified against (None: plain HTTP).
CA_FILE = ${paths.tls ? JSON.stringify(paths.tls.caFile) : "None"}


def out_of_recovery():
    try:
        result = subprocess.run([PSQL, "-X", "-A", "-t", "-q", "-h", SOCKET_DIR, "-p", PORT, "-d", "postgres",
                                 "-c", "SELECT pg_is_in_recovery()"], capture_output=True, text=True, timeout=2)
        return result.returncode == 0 and result.stdout.strip() == "f"
    except (OSError, subprocess.SubprocessError):
        return False


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
    started = time.monotonic()
    while not out_of_recovery():
        if time.monotonic() - started > ttl:
            print("citus after_promote: still in recovery after %s s; left to Patroni" % ttl, file=sys.stderr)
            return 1
        time.sleep(0.05)
    auth = config["restapi"]["authentication"]
    authorization = "Basic " + base64.b64encode(("%s:%s" % (auth["username"], auth["password"])).encode()).decode()
    body = json.dumps({"type": "after_promote", "group": GROUP, "leader": config["name"],
                       "timeout": ttl, "cooldown": dcs.get("retry_timeout", ${config.patroniRetryTimeout})}).encode()
    sent = []
    threads = [threading.Thread(target=post, args=(url, body, authorization, sent)) for url in COORDINATORS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print("citus after_promote %.2f s after the role change: %s" % (time.monotonic() - started, "; ".join(sent)), file=sys.stderr)
    return 0


sys.exit(main(sys.argv))
`;
}

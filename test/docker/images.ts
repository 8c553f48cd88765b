// The one mapping from the upstream images the Docker platform names to the images built here
// (no registry is reachable), and the builds themselves (docker build through the engine API).
import { readdirSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import type Docker from "dockerode";

/** The Debian 13 base scripts/docker-install.sh builds (debootstrap minbase + docker import). */
export const BASE_IMAGE_TAG = "local/debian:trixie";
const STAND_IN_CONTEXT = resolve(import.meta.dirname, "stand-ins");

/** What replaces an upstream image: the local base image, or a target of stand-ins/Dockerfile. */
export type StandIn = { base: string; why: string } | { target: string; why: string };

/**
 * Upstream repository (any tag) -> local stand-in. The only substitution the adapter makes.
 * The database image's base (Citus) becomes plain Debian 13: the same Dockerfile then installs
 * PostgreSQL 17 itself, with pgvector and Patroni, and Citus is absent.
 */
export const STAND_INS: Record<string, StandIn> = {
  "citusdata/citus": { base: BASE_IMAGE_TAG, why: "Debian 13 base; images/Dockerfile installs postgresql-17 (no Citus package here)" },
  "quay.io/coreos/etcd": { target: "etcd", why: "Debian's etcd-server/etcd-client, linked at /usr/local/bin like upstream" },
  haproxy: { target: "haproxy", why: "Debian's haproxy, run as user haproxy like the official image" },
  "edoburu/pgbouncer": { target: "pgbouncer", why: "Debian's pgbouncer + netcat, run as uid 70 like upstream" },
  "prom/prometheus": { target: "prometheus", why: "Debian's prometheus (2.53, upstream 3.x) at /bin/prometheus, run as nobody" },
  "quay.io/prometheuscommunity/postgres-exporter": { target: "postgres-exporter", why: "Debian's prometheus-postgres-exporter as /bin/postgres_exporter, run as nobody" },
  "prometheuscommunity/pgbouncer-exporter": { target: "pgbouncer-exporter", why: "Debian's prometheus-pgbouncer-exporter as /bin/pgbouncer_exporter, run as nobody" },
};

/** Upstream images with no stand-in: the test says so instead of running them. */
export const NO_STAND_IN: Record<string, string> = {
  "grafana/grafana": "Grafana: no reachable registry ships it and Debian has no package; not run here",
};

/** `docker.io/library/haproxy:2.9@sha256:...` -> `haproxy`. */
export function repositoryOf(reference: string): string {
  const withoutDigest = reference.replace(/@.*$/, "");
  const withoutTag = withoutDigest.replace(/:[^/:]+$/, "");
  return withoutTag.replace(/^docker\.io\//, "").replace(/^library\//, "");
}

export interface Built {
  id: string;
  tag: string;
  seconds: number;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)));
}

/**
 * `docker build` of a directory. `--network host`: our dockerd has no default bridge and no NAT
 * (it leaves the host's firewall alone), so RUN steps reach Debian's mirror through the host.
 */
export async function buildImage(
  docker: Docker,
  context: string,
  options: { tag: string; buildargs?: Record<string, string>; target?: string },
): Promise<Built> {
  const started = Date.now();
  const stream = await docker.buildImage(
    { context, src: filesUnder(context) },
    { t: options.tag, buildargs: options.buildargs, target: options.target, networkmode: "host", rm: true, forcerm: true },
  );
  const events = await new Promise<{ error?: string; stream?: string; aux?: { ID?: string } }[]>((resolvePromise, reject) =>
    docker.modem.followProgress(stream, (err: Error | null, output: unknown[]) => (err ? reject(err) : resolvePromise(output as never))),
  );
  const failed = events.find((e) => e.error);
  if (failed) {
    const tail = events.map((e) => e.stream ?? "").join("").split("\n").slice(-15).join("\n");
    throw new Error(`docker build of ${context} (${options.tag}) failed: ${failed.error}\n${tail}`);
  }
  const image = await docker.getImage(options.tag).inspect();
  return { id: image.Id, tag: options.tag, seconds: (Date.now() - started) / 1000 };
}

/** Builds (or takes from the build cache) the stand-in target, tagged dpc-test/<target>:stand-in. */
export function buildStandIn(docker: Docker, target: string): Promise<Built> {
  return buildImage(docker, STAND_IN_CONTEXT, { tag: `dpc-test/${target}:stand-in`, target, buildargs: { BASE_IMAGE: BASE_IMAGE_TAG } });
}

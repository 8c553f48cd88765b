// The one mapping from the upstream images the Docker platform names to the images built here
// (no registry is reachable), and the builds themselves (docker build through the engine API).
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { Readable } from "node:stream";
import type Docker from "dockerode";
import { pack } from "tar-stream";

/** The Debian 13 base scripts/docker-install.sh builds (debootstrap minbase + docker import). */
export const BASE_IMAGE_TAG = "local/debian:trixie";
const STAND_IN_CONTEXT = resolve(import.meta.dirname, "stand-ins");
const PROJECT_DIR = resolve(import.meta.dirname, "../..");

/**
 * What replaces an upstream image: a target of stand-ins/Dockerfile, or (with `dockerfile`) an image
 * of its own Dockerfile in stand-ins/, built with the vendored Citus source in its context.
 */
export interface StandIn {
  target: string;
  why: string;
  dockerfile?: string;
}

/**
 * Upstream repository (any tag) -> local stand-in. The only substitution the adapter makes.
 * citusdata/citus is built from the same vendored Citus source `npm run local` installs, on Debian 13
 * (PostgreSQL 17, like the upstream 13.0.x image): images/Dockerfile then runs unchanged on it.
 */
export const STAND_INS: Record<string, StandIn> = {
  "citusdata/citus": { target: "citus", dockerfile: "citus.Dockerfile", why: "PostgreSQL 17 from Debian 13 + Citus built from the vendored, checksummed source" },
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

export interface CitusSource {
  version: string;
  /** Absolute path of the tarball. */
  path: string;
  sha256: string;
}

/**
 * The vendored Citus source: version and sha256 pinned once, in scripts/install-citus.sh; the path
 * from DPC_CITUS_TARBALL, else ../shared/vendor/citus-<version>.tar.gz beside the project. Throws,
 * naming the path and both checksums, when the file is missing or is not the pinned one.
 */
export function citusSource(): CitusSource {
  const script = readFileSync(join(PROJECT_DIR, "scripts/install-citus.sh"), "utf8");
  const version = /^CITUS_VERSION=(\S+)$/m.exec(script)?.[1];
  const pinned = /^CITUS_SHA256=([0-9a-f]{64})$/m.exec(script)?.[1];
  if (!version || !pinned) throw new Error("scripts/install-citus.sh: CITUS_VERSION or CITUS_SHA256 not found");
  const path = resolve(process.env.DPC_CITUS_TARBALL ?? join(PROJECT_DIR, `../shared/vendor/citus-${version}.tar.gz`));
  let actual: string;
  try {
    actual = createHash("sha256").update(readFileSync(path)).digest("hex");
  } catch (error) {
    throw new Error(`Citus source tarball ${path}: ${(error as Error).message} (set DPC_CITUS_TARBALL)`);
  }
  if (actual !== pinned) throw new Error(`Citus source tarball ${path} has sha256 ${actual}; expected ${pinned} (Citus ${version}, scripts/install-citus.sh)`);
  return { version, path, sha256: pinned };
}

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

/** The build context as a tar archive: the directory's files plus `extra` (name in the context -> absolute path). */
async function contextArchive(dir: string, extra: Record<string, string>): Promise<Buffer> {
  const archive = pack();
  const chunks: Buffer[] = [];
  archive.on("data", (chunk: unknown) => chunks.push(chunk as Buffer));
  const done = new Promise<void>((resolvePromise, reject) => {
    archive.on("end", () => resolvePromise());
    archive.on("error", reject);
  });
  const entries = [...filesUnder(dir).map((name) => [name, join(dir, name)]), ...Object.entries(extra)];
  for (const [name, path] of entries) archive.entry({ name, mode: 0o644 }, readFileSync(path));
  archive.finalize();
  await done;
  return Buffer.concat(chunks);
}

/**
 * `docker build` of a directory. `--network host`: our dockerd has no default bridge and no NAT
 * (it leaves the host's firewall alone), so RUN steps reach Debian's mirror through the host.
 * `extraFiles` go into the context at build time only (the Citus tarball is never copied into the tree).
 */
export async function buildImage(
  docker: Docker,
  context: string,
  options: {
    tag: string;
    buildargs?: Record<string, string>;
    target?: string;
    dockerfile?: string;
    extraFiles?: Record<string, string>;
    /** Called with each build step as it starts. */
    progress?: (line: string) => void;
  },
): Promise<Built> {
  const started = Date.now();
  const stream = await docker.buildImage(Readable.from([await contextArchive(context, options.extraFiles ?? {})]), {
    t: options.tag,
    buildargs: options.buildargs,
    target: options.target,
    dockerfile: options.dockerfile,
    networkmode: "host",
    rm: true,
    forcerm: true,
  });
  const events = await new Promise<{ error?: string; stream?: string; aux?: { ID?: string } }[]>((resolvePromise, reject) =>
    docker.modem.followProgress(
      stream,
      (err: Error | null, output: unknown[]) => (err ? reject(err) : resolvePromise(output as never)),
      // Each Dockerfile step as it starts: a cold Citus build is silent for minutes otherwise.
      (event: { stream?: string }) => {
        const step = /^Step \d+\/\d+ : .*/.exec(event.stream ?? "")?.[0];
        if (step && options.progress) options.progress(`${options.tag}: ${step.slice(0, 120)}`);
      },
    ),
  );
  const failed = events.find((e) => e.error);
  if (failed) {
    const tail = events.map((e) => e.stream ?? "").join("").split("\n").slice(-15).join("\n");
    throw new Error(`docker build of ${context} (${options.tag}) failed: ${failed.error}\n${tail}`);
  }
  const image = await docker.getImage(options.tag).inspect();
  return { id: image.Id, tag: options.tag, seconds: (Date.now() - started) / 1000 };
}

/** Builds (or takes from the build cache) a stand-in, tagged dpc-test/<target>:stand-in. */
export function buildStandIn(docker: Docker, standIn: StandIn, progress?: (line: string) => void): Promise<Built> {
  const tag = `dpc-test/${standIn.target}:stand-in`;
  if (!standIn.dockerfile) return buildImage(docker, STAND_IN_CONTEXT, { tag, target: standIn.target, buildargs: { BASE_IMAGE: BASE_IMAGE_TAG }, progress });
  const citus = citusSource();
  return buildImage(docker, STAND_IN_CONTEXT, {
    tag,
    progress,
    dockerfile: standIn.dockerfile,
    buildargs: { BASE_IMAGE: BASE_IMAGE_TAG, CITUS_SHA256: citus.sha256 },
    extraFiles: { "citus.tar.gz": citus.path },
  });
}

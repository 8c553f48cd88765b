// Test-only stand-in for the Docker provider: takes what the Docker platform registers (recorded
// under Pulumi's mocks, test/docker/declared.ts) and creates it in a real Docker Engine through its
// API (dockerode). Every resource type and every field it accepts is listed below; anything else
// fails the run, so the platform can never rely on something this test silently skips. The only
// substitution is of images, by the mapping in test/docker/images.ts.
import { resolve } from "node:path";
import Docker from "dockerode";
import { pack } from "tar-stream";
import type { Registration } from "./declared.ts";
import { removeInReverseDependencyOrder } from "./destroy-order.ts";
import { buildImage, buildStandIn, NO_STAND_IN, repositoryOf, STAND_INS, type Built, type StandIn } from "./images.ts";

/** A container stop slower than this (seconds) keeps its last log lines in destroy()'s report. */
const SLOW_STOP_SECONDS = 10;

const PROJECT_DIR = resolve(import.meta.dirname, "../..");
// Pulumi's marker for a value not known before the resource exists: never valid here.
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

const NETWORK = "docker:index/network:Network";
const VOLUME = "docker:index/volume:Volume";
const IMAGE = "docker:index/image:Image";
const CONTAINER = "docker:index/container:Container";
/** Custom resources that create nothing in the engine: their values are already in the inputs above. */
const NOT_ENGINE_RESOURCES = new Set(["random:index/randomPassword:RandomPassword"]);
/** Dynamic resources (Pulumi runs them after their dependencies): handed back to the test to run. */
const DYNAMIC = "pulumi-nodejs:dynamic/";

// The allow-lists: the fields of each input the adapter translates.
const FIELDS = {
  network: ["name", "driver", "ipamConfigs"],
  ipamConfig: ["subnet"],
  volume: ["name"],
  image: ["imageName", "build", "skipPush", "buildOnPreview"],
  build: ["context", "args"],
  container: [
    "name", "hostname", "image", "entrypoints", "envs", "uploads", "networksAdvanced", "ports", "volumes",
    "healthcheck", "restart", "user", "cpus", "memory", "shmSize", "labels", "stopTimeout", "destroyGraceSeconds", "dnsOpts", "sysctls",
  ],
  upload: ["file", "content", "permissions", "owner", "group", "executable"],
  networkAdvanced: ["name", "aliases"],
  port: ["internal", "external", "ip", "protocol"],
  volumeMount: ["volumeName", "containerPath"],
  healthcheck: ["tests", "interval", "timeout", "retries", "startPeriod"],
  label: ["label", "value"],
} as const;
const RESTART_POLICIES = ["no", "on-failure", "always", "unless-stopped"];

type Inputs = Record<string, unknown>;

function allow(value: unknown, allowed: readonly string[], where: string): Inputs {
  if (!value || typeof value !== "object" || Array.isArray(value)) throw new Error(`${where}: expected an object, got ${JSON.stringify(value)}`);
  const unknown = Object.keys(value).filter((key) => !allowed.includes(key));
  if (unknown.length > 0) {
    throw new Error(`${where}: field(s) ${unknown.join(", ")} not understood by the docker test adapter (it translates: ${allowed.join(", ")})`);
  }
  if (JSON.stringify(value).includes(UNKNOWN)) throw new Error(`${where}: holds a value unknown before deployment`);
  return value as Inputs;
}

function list(value: unknown, where: string): unknown[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new Error(`${where}: expected a list, got ${JSON.stringify(value)}`);
  return value;
}

function str(value: unknown, where: string): string {
  if (typeof value !== "string" || value === "") throw new Error(`${where}: expected a non-empty string, got ${JSON.stringify(value)}`);
  return value;
}

/** Go duration as the provider takes it ("5s", "500ms", "2m0s", "1h2m3s": Go's time.ParseDuration units) -> nanoseconds. */
function nanoseconds(value: unknown, where: string): number {
  const text = str(value, where);
  const units = { ns: 1, us: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 } as const;
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== text) throw new Error(`${where}: duration ${JSON.stringify(value)} not understood`);
  return Math.round(parts.reduce((sum, p) => sum + Number(p[1]) * units[p[2] as keyof typeof units], 0));
}

/** Numeric owner/group only: the provider would resolve names on the machine running Pulumi. */
function numericId(value: unknown, where: string): number {
  if (value === undefined) return 0;
  if (typeof value !== "string" || !/^\d+$/.test(value)) throw new Error(`${where}: owner/group must be numeric, got ${JSON.stringify(value)}`);
  return Number(value);
}

/** The uploads as one tar archive, extracted at / before the container starts (as the provider does). */
async function uploadArchive(uploads: unknown[], where: string): Promise<Buffer> {
  const archive = pack();
  const chunks: Buffer[] = [];
  archive.on("data", (chunk: unknown) => chunks.push(chunk as Buffer));
  const done = new Promise<void>((resolvePromise, reject) => {
    archive.on("end", () => resolvePromise());
    archive.on("error", reject);
  });
  for (const [index, raw] of uploads.entries()) {
    const at = `${where}.uploads[${index}]`;
    const upload = allow(raw, FIELDS.upload, at);
    const file = str(upload.file, `${at}.file`);
    if (!file.startsWith("/")) throw new Error(`${at}.file: not an absolute path: ${file}`);
    // permissions wins over executable, as documented by the provider.
    const mode = upload.permissions !== undefined ? parseInt(str(upload.permissions, `${at}.permissions`), 8) : upload.executable ? 0o744 : 0o644;
    archive.entry(
      { name: file.slice(1), mode, uid: numericId(upload.owner, `${at}.owner`), gid: numericId(upload.group, `${at}.group`) },
      typeof upload.content === "string" ? upload.content : str(upload.content, `${at}.content`),
    );
  }
  archive.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** A multiplexed stdout/stderr stream (no TTY) as text: drops the 8-byte frame headers. */
function demultiplex(buffer: Buffer): string {
  const out: string[] = [];
  for (let i = 0; i + 8 <= buffer.length; ) {
    const size = buffer.readUInt32BE(i + 4);
    out.push(buffer.subarray(i + 8, i + 8 + size).toString("utf8"));
    i += 8 + size;
  }
  return out.join("");
}

export interface Timings {
  /** Seconds per image built (database image and stand-ins), cache hits included. */
  builds: Record<string, number>;
}

export class DockerAdapter {
  readonly docker: Docker;
  readonly timings: Timings = { builds: {} };
  /** Containers not run, with the reason (only images with no stand-in: see NO_STAND_IN). */
  readonly notRun: string[] = [];
  /** Dynamic resources: not engine objects; the test must run each kind itself or fail. */
  readonly deferred: Registration[] = [];
  private created = { containers: [] as string[], networks: [] as string[], volumes: [] as string[], imageTags: [] as string[] };
  private readonly builtImages = new Map<string, Built>(); // declared reference -> built image
  private readonly standIns = new Map<string, Promise<Built>>();
  // One build at a time: the stand-in targets share a first stage, built once and then taken from cache.
  private buildQueue: Promise<unknown> = Promise.resolve();
  private readonly networks = new Set<string>();
  private readonly volumes = new Set<string>();

  constructor(socketPath: string, private readonly log: (line: string) => void) {
    this.docker = new Docker({ socketPath });
  }

  /**
   * Creates every registered resource, dependencies first; returns the created container names.
   * `again`: a second `pulumi up` after a destroy: volumes that exist are adopted (as the provider
   * does: creating a volume that exists returns it), images already built here are reused.
   */
  async apply(registrations: Registration[], again = false): Promise<string[]> {
    const custom = registrations.filter((r) => r.custom);
    for (const r of custom) {
      if (r.type.startsWith(DYNAMIC)) {
        if (!again) this.deferred.push(r);
      } else if (![NETWORK, VOLUME, IMAGE, CONTAINER].includes(r.type) && !NOT_ENGINE_RESOURCES.has(r.type)) {
        throw new Error(`resource ${r.name}: type ${r.type} not understood by the docker test adapter`);
      }
    }
    if (!again) await this.removeLeftovers(custom);
    for (const r of custom.filter((r) => r.type === NETWORK)) await this.createNetwork(r);
    for (const r of custom.filter((r) => r.type === VOLUME)) await this.createVolume(r);
    for (const r of custom.filter((r) => r.type === IMAGE)) await this.createImage(r);
    // Containers in dependency order (a container starts once those it depends on have started, as
    // `pulumi up` creates them: the provider does not wait for health unless `wait` is set).
    const containers = custom.filter((r) => r.type === CONTAINER);
    const done = new Set<string>();
    const names: string[] = [];
    while (done.size < containers.length) {
      const ready = containers.filter(
        (c) => !done.has(c.urn) && c.dependencies.every((urn) => done.has(urn) || !containers.some((o) => o.urn === urn)),
      );
      if (ready.length === 0) throw new Error("container dependencies form a cycle");
      // Independent containers are created in parallel, as the Pulumi engine does.
      const created = await Promise.all(ready.map((c) => this.createContainer(c)));
      ready.forEach((c, i) => {
        if (created[i]) names.push(c.name);
        done.add(c.urn);
      });
    }
    return names;
  }

  /** Containers labelled as the cluster's (`dpc.cluster`), left by an interrupted run: removed. */
  async removeClusterLeftovers(cluster: string): Promise<void> {
    for (const info of await this.docker.listContainers({ all: true, filters: { label: [`dpc.cluster=${cluster}`] } })) {
      await this.docker.getContainer(info.Id).remove({ force: true, v: true });
      this.log(`removed leftover container ${info.Names.join(", ")}`);
    }
  }

  /** Leftovers of an interrupted run with the same names (only on our own dockerd): removed first. */
  private async removeLeftovers(custom: Registration[]): Promise<void> {
    const names = (type: string) => custom.filter((r) => r.type === type).map((r) => String(r.inputs.name));
    for (const name of names(CONTAINER)) {
      await this.docker.getContainer(name).remove({ force: true, v: true }).then(() => this.log(`removed leftover container ${name}`), () => undefined);
    }
    for (const name of names(NETWORK)) {
      await this.docker.getNetwork(name).remove().then(() => this.log(`removed leftover network ${name}`), () => undefined);
    }
    for (const name of names(VOLUME)) {
      await this.docker.getVolume(name).remove().then(() => this.log(`removed leftover volume ${name}`), () => undefined);
    }
  }

  private async createNetwork(r: Registration): Promise<void> {
    const inputs = allow(r.inputs, FIELDS.network, `network ${r.name}`);
    const name = str(inputs.name, `network ${r.name}.name`);
    const driver = inputs.driver === undefined ? "bridge" : str(inputs.driver, `network ${r.name}.driver`);
    const ipam = list(inputs.ipamConfigs, `network ${r.name}.ipamConfigs`).map((c, i) => {
      const config = allow(c, FIELDS.ipamConfig, `network ${r.name}.ipamConfigs[${i}]`);
      return { Subnet: str(config.subnet, `network ${r.name}.ipamConfigs[${i}].subnet`) };
    });
    await this.docker.createNetwork({ Name: name, Driver: driver, CheckDuplicate: true, IPAM: { Driver: "default", Config: ipam } });
    this.created.networks.push(name);
    this.networks.add(name);
  }

  private async createVolume(r: Registration): Promise<void> {
    const inputs = allow(r.inputs, FIELDS.volume, `volume ${r.name}`);
    const name = str(inputs.name, `volume ${r.name}.name`);
    await this.docker.createVolume({ Name: name });
    if (!this.created.volumes.includes(name)) this.created.volumes.push(name);
    this.volumes.add(name);
  }

  /** The Image resource: `docker build` of its context with its build args; a mapped base image is substituted. */
  private async createImage(r: Registration): Promise<void> {
    const inputs = allow(r.inputs, FIELDS.image, `image ${r.name}`);
    if (inputs.skipPush !== true) throw new Error(`image ${r.name}: only skipPush: true images can be built here (no registry)`);
    const tag = str(inputs.imageName, `image ${r.name}.imageName`);
    if (this.builtImages.has(tag)) return;
    const build = allow(inputs.build, FIELDS.build, `image ${r.name}.build`);
    // A build arg naming a mapped upstream image (the Citus base) gets its stand-in's tag.
    const args: Record<string, string> = {};
    for (const [key, raw] of Object.entries(allow(build.args ?? {}, Object.keys(build.args ?? {}), `image ${r.name}.build.args`))) {
      const value = str(raw, `image ${r.name}.build.args.${key}`);
      const stand = STAND_INS[repositoryOf(value)];
      args[key] = stand ? (await this.standIn(value, stand)).tag : value;
      if (stand) this.log(`image ${tag}: build arg ${key}=${value} -> ${args[key]} (${stand.why})`);
    }
    const context = resolve(PROJECT_DIR, str(build.context, `image ${r.name}.build.context`));
    const built = await buildImage(this.docker, context, { tag, buildargs: args, progress: this.log });
    this.timings.builds[tag] = built.seconds;
    this.created.imageTags.push(tag);
    // Containers name the image by its repoDigest output (or by its name): both mean this build.
    this.builtImages.set(tag, built);
    if (typeof r.outputs.repoDigest === "string") this.builtImages.set(r.outputs.repoDigest, built);
  }

  /** The image a container runs: one built from a declared Image, or an upstream image's stand-in. */
  private async resolveImage(reference: string, where: string): Promise<string | undefined> {
    const declared = this.builtImages.get(reference);
    if (declared) return declared.id;
    const repository = repositoryOf(reference);
    if (NO_STAND_IN[repository]) return undefined;
    const stand = STAND_INS[repository];
    if (!stand) throw new Error(`${where}: image ${reference} has no local stand-in (add it to STAND_INS in test/docker/images.ts)`);
    return (await this.standIn(reference, stand)).id;
  }

  /** Builds a stand-in once (one build at a time), however many containers or builds name it. */
  private standIn(reference: string, stand: StandIn): Promise<Built> {
    if (!this.standIns.has(stand.target)) {
      this.log(`building stand-in dpc-test/${stand.target}:stand-in for ${repositoryOf(reference)}${stand.dockerfile ? " (a few minutes on a cold cache: Citus compiles)" : ""}`);
      const build = this.buildQueue.then(() => buildStandIn(this.docker, stand, this.log));
      this.buildQueue = build.catch(() => undefined);
      this.standIns.set(
        stand.target,
        build.then((built) => {
          this.timings.builds[built.tag] = built.seconds;
          this.created.imageTags.push(built.tag);
          this.log(`image ${reference} -> ${built.tag} (${stand.why}), ${built.seconds.toFixed(1)} s`);
          return built;
        }),
      );
    }
    return this.standIns.get(stand.target)!;
  }

  /** Returns false when the container is not run (an image with no stand-in). */
  private async createContainer(r: Registration): Promise<boolean> {
    const where = `container ${r.name}`;
    const inputs = allow(r.inputs, FIELDS.container, where);
    const name = str(inputs.name, `${where}.name`);
    const reference = str(inputs.image, `${where}.image`);
    const image = await this.resolveImage(reference, where);
    if (!image) {
      this.notRun.push(`${name}: ${NO_STAND_IN[repositoryOf(reference)]}`);
      return false;
    }

    const networks = list(inputs.networksAdvanced, `${where}.networksAdvanced`).map((n, i) => {
      const network = allow(n, FIELDS.networkAdvanced, `${where}.networksAdvanced[${i}]`);
      const networkName = str(network.name, `${where}.networksAdvanced[${i}].name`);
      if (!this.networks.has(networkName)) throw new Error(`${where}: network ${networkName} was not declared`);
      return { name: networkName, aliases: list(network.aliases, `${where}.networksAdvanced[${i}].aliases`).map(String) };
    });
    if (networks.length > 1) throw new Error(`${where}: more than one network is not translated`);
    const exposed: Record<string, object> = {};
    const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
    for (const [i, p] of list(inputs.ports, `${where}.ports`).entries()) {
      const port = allow(p, FIELDS.port, `${where}.ports[${i}]`);
      const key = `${port.internal}/${port.protocol ?? "tcp"}`;
      exposed[key] = {};
      // The provider publishes on 0.0.0.0 unless `ip` is given.
      if (port.external !== undefined) (bindings[key] ??= []).push({ HostIp: String(port.ip ?? "0.0.0.0"), HostPort: String(port.external) });
    }
    const binds = list(inputs.volumes, `${where}.volumes`).map((v, i) => {
      const volume = allow(v, FIELDS.volumeMount, `${where}.volumes[${i}]`);
      const volumeName = str(volume.volumeName, `${where}.volumes[${i}].volumeName`);
      if (!this.volumes.has(volumeName)) throw new Error(`${where}: volume ${volumeName} was not declared`);
      return `${volumeName}:${str(volume.containerPath, `${where}.volumes[${i}].containerPath`)}`;
    });
    const health = inputs.healthcheck === undefined ? undefined : allow(inputs.healthcheck, FIELDS.healthcheck, `${where}.healthcheck`);
    const restart = inputs.restart === undefined ? "no" : str(inputs.restart, `${where}.restart`);
    if (!RESTART_POLICIES.includes(restart)) throw new Error(`${where}.restart: ${restart} not understood`);
    const labels = Object.fromEntries(
      list(inputs.labels, `${where}.labels`).map((l, i) => {
        const label = allow(l, FIELDS.label, `${where}.labels[${i}]`);
        return [str(label.label, `${where}.labels[${i}].label`), String(label.value)];
      }),
    );

    const container = await this.docker.createContainer({
      name,
      Hostname: inputs.hostname === undefined ? undefined : str(inputs.hostname, `${where}.hostname`),
      Image: image,
      // Entrypoint without Cmd: the daemon then drops the image's CMD as well.
      Entrypoint: list(inputs.entrypoints, `${where}.entrypoints`).map(String),
      Env: list(inputs.envs, `${where}.envs`).map(String),
      User: inputs.user === undefined ? undefined : str(inputs.user, `${where}.user`),
      // Seconds `docker stop` waits before SIGKILL. destroyGraceSeconds is the provider's own timeout
      // for a delete by Pulumi, which this adapter never does (teardown removes by force).
      StopTimeout: inputs.stopTimeout === undefined ? undefined : Number(inputs.stopTimeout),
      Labels: labels,
      ExposedPorts: exposed,
      Healthcheck: health && {
        Test: list(health.tests, `${where}.healthcheck.tests`).map(String),
        Interval: health.interval === undefined ? undefined : nanoseconds(health.interval, `${where}.healthcheck.interval`),
        Timeout: health.timeout === undefined ? undefined : nanoseconds(health.timeout, `${where}.healthcheck.timeout`),
        StartPeriod: health.startPeriod === undefined ? undefined : nanoseconds(health.startPeriod, `${where}.healthcheck.startPeriod`),
        Retries: health.retries === undefined ? undefined : Number(health.retries),
      },
      HostConfig: {
        NetworkMode: networks[0]?.name,
        PortBindings: bindings,
        Binds: binds,
        RestartPolicy: { Name: restart === "no" ? "" : restart },
        // The provider takes cpus as a decimal string, memory and shmSize in MB.
        NanoCpus: inputs.cpus === undefined ? undefined : Math.round(Number(str(inputs.cpus, `${where}.cpus`)) * 1e9),
        Memory: inputs.memory === undefined ? undefined : Number(inputs.memory) * 1024 * 1024,
        ShmSize: inputs.shmSize === undefined ? undefined : Number(inputs.shmSize) * 1024 * 1024,
        DnsOptions: list(inputs.dnsOpts, `${where}.dnsOpts`).map((o, i) => str(o, `${where}.dnsOpts[${i}]`)),
        Sysctls: inputs.sysctls === undefined ? undefined : Object.fromEntries(Object.entries(inputs.sysctls as Record<string, unknown>).map(([k, v]) => [k, str(v, `${where}.sysctls.${k}`)])),
      },
      NetworkingConfig: networks[0] ? { EndpointsConfig: { [networks[0].name]: { Aliases: networks[0].aliases } } } : undefined,
    });
    this.created.containers.push(name);
    const uploads = list(inputs.uploads, `${where}.uploads`);
    if (uploads.length > 0) await container.putArchive(await uploadArchive(uploads, where), { path: "/" });
    await container.start();
    return true;
  }

  /**
   * What the engine and the provider do when `pulumi up` replaces a container registered with
   * deleteBeforeReplace: the old one is deleted first, then the new one created. The provider's
   * Delete (terraform-provider-docker v4.5.0, internal/provider/resource_docker_container_funcs.go,
   * resourceDockerContainerDelete, lines 1079-1110) stops the container with the old state's
   * destroy_grace_seconds as the timeout, then removes it with Force and remove_volumes (default
   * true: anonymous volumes only; named volumes stay); Create is createContainer's. Returns when the
   * new container has started, with the seconds its stop took and the time it started (ms).
   */
  async replaceContainer(old: Registration, next: Registration): Promise<{ stopSeconds: number; startedAt: number }> {
    const name = str(old.inputs.name, `container ${old.name}.name`);
    if (str(next.inputs.name, `container ${next.name}.name`) !== name) throw new Error(`container ${old.name}: a replacement under another name is not translated`);
    const container = this.docker.getContainer(name);
    const started = Date.now();
    await container.stop({ t: Number(old.inputs.destroyGraceSeconds ?? 0) }).catch(() => undefined); // already stopped: fine
    const stopSeconds = (Date.now() - started) / 1000;
    await container.remove({ force: true, v: true });
    this.created.containers = this.created.containers.filter((n) => n !== name);
    if (!(await this.createContainer(next))) throw new Error(`container ${name}: its replacement was not run`);
    return { stopSeconds, startedAt: Date.now() };
  }

  /**
   * What `pulumi destroy` does with these registrations: every container stopped with its
   * destroyGraceSeconds (the timeout the provider passes to `docker stop`) and removed, after the
   * containers that depend on it (destroy-order.ts), the networks
   * removed, and each volume removed unless it was registered with retainOnDelete. Images stay (the
   * test reuses them). Returns the volumes kept and removed, by name.
   */
  async destroy(registrations: Registration[]): Promise<{ kept: string[]; removed: string[]; stops: { name: string; seconds: number; lastLines?: string }[] }> {
    const custom = registrations.filter((r) => r.custom);
    const containers = custom.filter((r) => r.type === CONTAINER).map((r) => String(r.inputs.name));
    const stops: { name: string; seconds: number; lastLines?: string }[] = [];
    // Containers in Pulumi's delete order (a container after those that depend on it: etcd last).
    await removeInReverseDependencyOrder(registrations, async (r) => {
      const name = String(r.inputs.name);
      if (r.type !== CONTAINER || !this.created.containers.includes(name)) return;
      const container = this.docker.getContainer(name);
      const started = Date.now();
      await container.stop({ t: Number(r.inputs.destroyGraceSeconds ?? 0) }).catch(() => undefined); // already stopped: fine
      const seconds = (Date.now() - started) / 1000;
      // A slow stop's last lines (its shutdown), read before the container and its log are removed.
      const lastLines = seconds > SLOW_STOP_SECONDS ? await this.logs(name, 40).catch((e: Error) => `(no log: ${e.message})`) : undefined;
      stops.push({ name, seconds, ...(lastLines !== undefined ? { lastLines } : {}) });
      await container.remove({ v: false });
    });
    this.created.containers = this.created.containers.filter((n) => !containers.includes(n));
    for (const r of custom.filter((r) => r.type === NETWORK)) {
      const name = String(r.inputs.name);
      await this.docker.getNetwork(name).remove();
      this.created.networks = this.created.networks.filter((n) => n !== name);
      this.networks.delete(name);
    }
    const kept: string[] = [];
    const removed: string[] = [];
    for (const r of custom.filter((r) => r.type === VOLUME)) {
      const name = String(r.inputs.name);
      if (r.retainOnDelete) {
        kept.push(name);
        continue;
      }
      await this.docker.getVolume(name).remove();
      this.created.volumes = this.created.volumes.filter((n) => n !== name);
      removed.push(name);
    }
    return { kept, removed, stops };
  }

  /** Names of the volumes in the engine. */
  async volumeNames(): Promise<string[]> {
    return ((await this.docker.listVolumes()).Volumes ?? []).map((v) => v.Name);
  }

  /** Waits until every created container reports healthy; returns the seconds it took. */
  async waitHealthy(timeoutSeconds: number, names = this.created.containers): Promise<number> {
    const started = Date.now();
    for (;;) {
      const states = await Promise.all(names.map(async (name) => [name, await this.docker.getContainer(name).inspect()] as const));
      const waiting = states.filter(([, info]) => info.State.Health?.Status !== "healthy");
      if (waiting.length === 0) return (Date.now() - started) / 1000;
      if ((Date.now() - started) / 1000 > timeoutSeconds) {
        const details = await Promise.all(waiting.map(async ([name, info]) => `${name}: ${info.State.Status}/${info.State.Health?.Status}; health: ${info.State.Health?.Log?.slice(-1)[0]?.Output?.trim() ?? "none"}; log:\n${await this.logs(name, 15)}`));
        throw new Error(`not healthy after ${timeoutSeconds} s:\n${details.join("\n")}`);
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  async inspect(name: string): Promise<Docker.ContainerInspectInfo> {
    return this.docker.getContainer(name).inspect();
  }

  /** The container's address on its (single) network: the host reaches it directly on the bridge. */
  async ipOf(name: string): Promise<string> {
    const networks = (await this.inspect(name)).NetworkSettings.Networks;
    return Object.values(networks)[0].IPAddress;
  }

  /** The containers this adapter created, with the registration each came from. */
  get containers(): string[] {
    return [...this.created.containers];
  }

  /**
   * Runs `cmd` in a running container (as `user`, default the container's) and returns its exit
   * code and output (stdout and stderr together).
   */
  async exec(name: string, cmd: string[], user?: string): Promise<{ code: number; output: string }> {
    const exec = await this.docker.getContainer(name).exec({ Cmd: cmd, User: user, AttachStdout: true, AttachStderr: true });
    const stream = await exec.start({ hijack: true, stdin: false });
    const chunks: Buffer[] = [];
    await new Promise<void>((resolvePromise, reject) => {
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () => resolvePromise());
      stream.on("error", reject);
    });
    const info = await exec.inspect();
    return { code: info.ExitCode ?? -1, output: demultiplex(Buffer.concat(chunks)) };
  }

  /**
   * Gives a stopped container another address on its network (disconnect, connect with `ip`), as a
   * host restart or a new container would: the name stays, the address changes.
   */
  async readdress(name: string, ip: string): Promise<void> {
    const info = await this.inspect(name);
    const [network, endpoint] = Object.entries(info.NetworkSettings.Networks)[0];
    await this.docker.getNetwork(network).disconnect({ Container: name, Force: true });
    await this.docker.getNetwork(network).connect({ Container: name, EndpointConfig: { IPAMConfig: { IPv4Address: ip }, Aliases: endpoint.Aliases ?? [] } });
  }

  /** Names of the containers this adapter created and has not removed. */
  containerNames(): string[] {
    return [...this.created.containers];
  }

  async logs(name: string, lines: number): Promise<string> {
    const buffer = (await this.docker.getContainer(name).logs({ stdout: true, stderr: true, tail: lines })) as unknown as Buffer;
    return demultiplex(buffer);
  }

  /** Removes every container, network, volume and image tag this adapter created. */
  async teardown(): Promise<string[]> {
    const problems: string[] = [];
    const attempt = (what: string, action: Promise<unknown>) => action.catch((e: Error) => problems.push(`${what}: ${e.message}`));
    for (const name of this.created.containers) await attempt(`container ${name}`, this.docker.getContainer(name).remove({ force: true, v: true }));
    for (const name of this.created.networks) await attempt(`network ${name}`, this.docker.getNetwork(name).remove());
    for (const name of this.created.volumes) await attempt(`volume ${name}`, this.docker.getVolume(name).remove());
    // noprune: the parent layers stay as build cache, so the next run rebuilds from cache in seconds.
    // Newest first: an image goes before the stand-in it was built on.
    for (const tag of [...this.created.imageTags].reverse()) await attempt(`image ${tag}`, this.docker.getImage(tag).remove({ noprune: true }));
    return problems;
  }

  /** What is left in the engine of what this adapter created (must be nothing after teardown). */
  async leftovers(): Promise<string[]> {
    const containers = (await this.docker.listContainers({ all: true })).flatMap((c) => c.Names.map((n) => n.replace(/^\//, "")));
    const networks = (await this.docker.listNetworks()).map((n) => n.Name);
    const volumes = ((await this.docker.listVolumes()).Volumes ?? []).map((v) => v.Name);
    const tags = (await this.docker.listImages()).flatMap((i) => i.RepoTags ?? []);
    return [
      ...this.created.containers.filter((n) => containers.includes(n)).map((n) => `container ${n}`),
      ...this.created.networks.filter((n) => networks.includes(n)).map((n) => `network ${n}`),
      ...this.created.volumes.filter((n) => volumes.includes(n)).map((n) => `volume ${n}`),
      ...this.created.imageTags.filter((t) => tags.includes(t)).map((t) => `image ${t}`),
    ];
  }
}

// Replacing the containers of Patroni groups one member at a time, inside one `pulumi up`. The
// Pulumi program registers a member's container only when `turn()` resolves (the Node SDK sends a
// registration once all its inputs are known), so the engine replaces it only then. The order is
// rollGroup's (orchestrate.ts, rolloutPlan): outdated replicas first, each waited for until its new
// container runs and Patroni reports it healthy again; then a gated switchover (PgBouncer paused for
// the coordinator group); then the former leader. Groups are rolled one after the other, in the
// order given. A member whose container runs the wanted inputs already (same fingerprint), or has
// no container yet (created, not replaced), gets its turn at once: a run that changes nothing waits
// for nothing and asks Patroni nothing. No Pulumi import and no I/O of its own: the environment
// (the container engine and Patroni) is handed in, so the unit tests drive it with fakes.
import { defaults, rollGroup, waitFor, type GroupReport, type RolloutOptions, type RolloutTarget } from "./orchestrate.ts";
import { parameterPatch, type Parameters } from "./parameters.ts";

/** A member's container as the engine runs it now. */
export interface DeployedContainer {
  /** The fingerprint it was created with (its label); undefined for a container without one. */
  fingerprint?: string;
  running: boolean;
  /** Where the machine running the rollout reaches it (Docker: its bridge address); undefined when it has none. */
  address?: string;
}

/** What the rolling replacement needs from outside. Methods throw when the engine or Patroni cannot be asked. */
export interface ReplacementEnvironment {
  /** The member's container now; undefined when none exists. */
  deployed(member: string): Promise<DeployedContainer | undefined>;
  /** A rollout target (Patroni REST, PgBouncer gate) for `group`, its members reached at `addresses` (member -> address). */
  target(group: number, addresses: Record<string, string>): Promise<RolloutTarget>;
}

/** A Patroni group whose containers are rolled: its Citus group number and member names. */
export interface ReplacementGroup {
  group: number;
  members: string[];
}

export interface ReplacementOptions extends RolloutOptions {
  /**
   * The longest wait from a member's turn until its new container runs, ms: the engine stops the old
   * one first (its stop grace period) and may wait for other resources before that.
   */
  replaceTimeoutMs?: number;
  /**
   * The PostgreSQL parameters the group must run with (Patroni's dynamic configuration): written
   * before the group's first container is replaced, so each replaced member starts with them (a
   * memory change resizes shared_buffers in the same roll) and the PostgresConfig step afterwards
   * finds nothing to restart. Omitted: the dynamic configuration is left alone.
   */
  parameters?: Parameters;
}

/** What one group's roll did. */
export interface ReplacementReport extends Omit<GroupReport, "changed"> {
  /** Members whose container ran other inputs than wanted (replaced in `restarted`'s order). */
  outdated: string[];
  /** Parameters written to the dynamic configuration before the replacements (set or removed). */
  changed: string[];
}

/** A promise with its resolve/reject, and whether it settled (turn gates, a roll's outcome). */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
  settled: boolean;
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Nobody may be waiting yet: a failure is reported to whoever awaits, never as an unhandled rejection.
  promise.catch(() => undefined);
  const d: Deferred<T> = {
    promise,
    settled: false,
    resolve: (value) => {
      d.settled = true;
      resolve(value);
    },
    reject: (error) => {
      d.settled = true;
      reject(error);
    },
  };
  return d;
}

export class RollingReplacement {
  /** One report per group, in the order the groups finished. */
  readonly reports: ReplacementReport[] = [];
  private readonly wanted = new Map<string, string>();
  private readonly gates = new Map<string, Deferred<void>>();
  private readonly finished = new Map<number, Deferred<void>>();
  private readonly groupOfMember = new Map<string, ReplacementGroup>();

  constructor(private readonly groups: ReplacementGroup[], private readonly environment: ReplacementEnvironment, private readonly options: ReplacementOptions = {}) {
    for (const group of groups) {
      this.finished.set(group.group, deferred());
      for (const member of group.members) {
        this.groupOfMember.set(member, group);
        this.gates.set(member, deferred());
      }
    }
  }

  /**
   * Resolves when `member`'s container may be registered with the inputs whose fingerprint is
   * `fingerprint`; rejects when its group's roll fails (the update then stops with that error).
   * Once every member of the group has asked, the group's roll starts.
   */
  turn(member: string, fingerprint: string): Promise<void> {
    const group = this.groupOfMember.get(member);
    if (!group) throw new Error(`rolling replacement: ${member} is in no group (${this.groups.map((g) => g.members.join(", ")).join("; ")})`);
    if (this.wanted.has(member)) throw new Error(`rolling replacement: ${member} asked for its turn twice`);
    this.wanted.set(member, fingerprint);
    if (group.members.every((m) => this.wanted.has(m))) void this.roll(group);
    return this.gates.get(member)!.promise;
  }

  /** Resolves when every group's roll has finished; rejects with the first failure. */
  async done(): Promise<ReplacementReport[]> {
    for (const group of this.groups) await this.finished.get(group.group)!.promise;
    return this.reports;
  }

  private release(member: string): void {
    const gate = this.gates.get(member)!;
    if (!gate.settled) gate.resolve();
  }

  private async roll(group: ReplacementGroup): Promise<void> {
    const finished = this.finished.get(group.group)!;
    try {
      const deployed = await Promise.all(group.members.map((m) => this.environment.deployed(m)));
      const outdated = group.members.filter((m, i) => deployed[i] !== undefined && deployed[i]!.fingerprint !== this.wanted.get(m));
      for (const member of group.members) if (!outdated.includes(member)) this.release(member);
      if (outdated.length > 0) {
        // One group at a time: the previous group's roll (or its decision that nothing changed) first.
        const index = this.groups.indexOf(group);
        if (index > 0) await this.finished.get(this.groups[index - 1].group)!.promise;
        const o = defaults(this.options);
        const target = this.target(group);
        const changed = await this.patchParameters(target, group.group, o);
        o.log(`rolling replacement: group ${group.group}: replacing ${outdated.join(", ")} one at a time`);
        const rolled = await rollGroup(target, group.group, { ...this.options, only: outdated, demotionRestarts: false });
        this.reports.push({ ...rolled, outdated, changed });
      } else {
        this.reports.push({ group: group.group, restarted: [], switchovers: [], outdated, changed: [] });
      }
      finished.resolve();
    } catch (error) {
      const failure = new Error(`rolling replacement of group ${group.group}: ${(error as Error).message}`);
      for (const member of group.members) {
        const gate = this.gates.get(member)!;
        if (!gate.settled) gate.reject(failure);
      }
      finished.reject(failure);
    }
  }

  /** Makes the group's dynamic configuration carry options.parameters; returns the names set or removed. */
  private async patchParameters(target: RolloutTarget, group: number, o: ReturnType<typeof defaults>): Promise<string[]> {
    if (!this.options.parameters) return [];
    const patch = parameterPatch(await target.parameters(group), this.options.parameters);
    if (!patch) return [];
    await target.patchConfig(group, patch);
    const names = Object.keys(patch.postgresql.parameters);
    o.log(`rolling replacement: group ${group}: dynamic configuration patched (${names.join(", ")}) before the replacements`);
    await o.sleep(o.settleMs);
    return names;
  }

  /**
   * The group's rollout target, its members reached at the addresses their containers have now (a
   * replaced container may come back at another address). Its `restart` is the replacement: the
   * member's turn, then the wait until its new container runs with the wanted fingerprint.
   */
  private target(group: ReplacementGroup): RolloutTarget {
    const o = defaults(this.options);
    const env = this.environment;
    const current = async (): Promise<RolloutTarget> => {
      const addresses: Record<string, string> = {};
      for (const member of group.members) {
        const address = (await env.deployed(member).catch(() => undefined))?.address;
        if (address) addresses[member] = address;
      }
      return env.target(group.group, addresses);
    };
    const replaceTimeoutMs = this.options.replaceTimeoutMs ?? o.stepTimeoutMs;
    const target: RolloutTarget = {
      groups: [group.group],
      // Only this group's members, whatever a member's /cluster lists.
      members: async (g) => (await (await current()).members(g))?.filter((m) => group.members.includes(m.name)),
      parameters: async (g) => (await current()).parameters(g),
      patchConfig: async (g, patch) => (await current()).patchConfig(g, patch),
      switchover: async (g, leader, candidate) => (await current()).switchover(g, leader, candidate),
      checkpoint: async (g, member) => (await current()).checkpoint?.(g, member),
      restart: async (_g, member) => {
        o.log(`rolling replacement: group ${group.group}: ${member}'s turn`);
        this.release(member);
        await waitFor(`${member}: its new container running`, { ...o, stepTimeoutMs: replaceTimeoutMs }, async () => {
          const now = await env.deployed(member);
          return now?.running && now.fingerprint === this.wanted.get(member) ? true : undefined;
        });
      },
    };
    target.pooler = {
      pause: async () => (await current()).pooler?.pause(),
      resume: async () => (await current()).pooler?.resume(),
    };
    target.routedAlone = async (member) => {
      const t = await current();
      return t.routedAlone ? t.routedAlone(member) : true;
    };
    target.gatesWorkerSwitchovers = async () => (await (await current()).gatesWorkerSwitchovers?.()) === true;
    target.routedWorker = async (g, member) => {
      const t = await current();
      return t.routedWorker ? t.routedWorker(g, member) : true;
    };
    return target;
  }
}

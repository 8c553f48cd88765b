// Rolling changes of a Patroni + Citus cluster, one group at a time: the wanted PostgreSQL
// parameters go into each group's dynamic configuration (PATCH /config: a reload on every member);
// members Patroni then marks `pending_restart` are restarted in rolloutPlan's order (replicas first,
// one at a time, each waited for; a switchover; the former leader only if its demotion did not
// already restart it). Around the coordinator group's switchover PgBouncer is paused, so clients wait
// instead of failing. No Pulumi import and no I/O of its own: the target (patroni-http.ts) does the
// talking, so the Pulumi dynamic provider, the local runner and the unit tests share this code.
import { parameterPatch, type ConfigPatch, type Parameters } from "./parameters.ts";
import { rolloutPlan, SYNCHRONOUS_ROLES, type RolloutStep } from "./plan.ts";

/** One Patroni member as GET /cluster reports it. */
export interface Member {
  name: string;
  role: string;
  /** "running", "streaming", "starting", "stopped", ... */
  state: string;
  /** Patroni's `pending_restart`: a changed parameter takes effect only after a restart. */
  pendingRestart: boolean;
  /** Its PostgreSQL host (GET /cluster `host`, from postgresql.connect_address): its pg_dist_node name. */
  host?: string;
}

/** What the rollout needs from a cluster; every method throws on a refusal or an unreachable API. */
export interface RolloutTarget {
  /** Citus group numbers, in the order they are rolled (0: the coordinator group). */
  readonly groups: number[];
  /** The group's members, or undefined when no member answers. */
  members(group: number): Promise<Member[] | undefined>;
  /** The PostgreSQL parameters in the group's dynamic configuration (GET /config). */
  parameters(group: number): Promise<Parameters>;
  /** PATCH /config of the group. */
  patchConfig(group: number, patch: ConfigPatch): Promise<void>;
  /** Restarts PostgreSQL of one member (POST /restart on it); resolves once Patroni has restarted it. */
  restart(group: number, member: string): Promise<void>;
  /** Asks Patroni for a switchover (POST /switchover). */
  switchover(group: number, leader: string, candidate: string): Promise<void>;
  /** CHECKPOINT on the leader before its switchover: its shutdown checkpoint, and the pause, get short. */
  checkpoint?(group: number, member: string): Promise<void>;
  /** PgBouncer in front of the coordinator: pause (PAUSE, then RECONNECT) and resume (RESUME). */
  pooler?: { pause(): Promise<void>; resume(): Promise<void> };
  /** Whether the read-write path (HAProxy) routes to `member` alone, and it accepts writes. */
  routedAlone?(member: string): Promise<boolean>;
  /**
   * Whether worker groups' switchovers are gated by PgBouncer as well (absent: false). Needed while
   * members check different REST API passwords (a rotation's roll): a worker's leader announces its
   * demotion to the coordinator leader with its own REST credentials (Patroni ha.py
   * notify_mpp_coordinator 'before_demote', POST /citus), and a 401 there is ignored by Patroni, so
   * the coordinator keeps sending that group's queries to a primary that shuts down.
   */
  gatesWorkerSwitchovers?(): Promise<boolean>;
  /** Whether Citus routes `group`'s queries to `member` (the coordinator's pg_dist_node names its host as the group's primary). */
  routedWorker?(group: number, member: string): Promise<boolean>;
}

export interface RolloutOptions {
  /** The longest wait for one step (a restart, a switchover, a group becoming healthy), ms. */
  stepTimeoutMs?: number;
  /** After a PATCH, how long Patroni may take to reload every member (a few loop_waits), ms. */
  settleMs?: number;
  pollMs?: number;
  log?: (line: string) => void;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

export interface SwitchoverReport {
  group: number;
  from: string;
  to: string;
  /** From the switchover request until the new leader was routed (coordinator: PgBouncer resumed), s. */
  seconds: number;
  /** Whether PgBouncer was paused around it (the coordinator group). */
  paused: boolean;
  /** When it started (the options' clock, ms). */
  startedAt: number;
}

export interface GroupReport {
  group: number;
  /** Parameters the PATCH set or removed (empty: the DCS already agreed). */
  changed: string[];
  /** Members restarted, in order. */
  restarted: string[];
  switchovers: SwitchoverReport[];
}

export interface RolloutReport {
  groups: GroupReport[];
}

export function defaults(options: RolloutOptions): Required<RolloutOptions> {
  return {
    stepTimeoutMs: options.stepTimeoutMs ?? 180000,
    settleMs: options.settleMs ?? 5000,
    pollMs: options.pollMs ?? 250,
    log: options.log ?? (() => undefined),
    sleep: options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))),
    now: options.now ?? Date.now,
  };
}

/** Polls `check` until it returns a value; throws `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, o: Required<RolloutOptions>, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = o.now() + o.stepTimeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    if (o.now() >= deadline) throw new Error(`rollout: ${what}: not within ${Math.round(o.stepTimeoutMs / 1000)} s`);
    await o.sleep(o.pollMs);
  }
}

const healthy = (m: Member) => m.state === "running" || m.state === "streaming";

/**
 * Waits until the group has a running leader, every member runs or streams, and (when `synchronous`)
 * a standby acknowledges commits: only then may one member go down, or be switched over to.
 */
export async function groupReady(target: RolloutTarget, group: number, synchronous: boolean, o: Required<RolloutOptions>, size?: number): Promise<Member[]> {
  return waitFor(`group ${group} healthy`, o, async () => {
    const members = await target.members(group);
    if (!members || (size !== undefined && members.length < size)) return undefined;
    if (!members.some((m) => m.role === "leader" && m.state === "running") || !members.every(healthy)) return undefined;
    if (synchronous && members.length > 1 && !members.some((m) => SYNCHRONOUS_ROLES.includes(m.role))) return undefined;
    return members;
  });
}

/**
 * A switchover of `group` from `from` to `to`. For the coordinator group (0) with a pooler, PgBouncer
 * is paused first and resumed only once the read-write path routes to the new leader alone, in
 * every case (a failed switchover never leaves clients paused); for a worker group only when the
 * target gates worker switchovers (gatesWorkerSwitchovers), resumed once Citus routes the group to
 * the new leader (routedWorker): otherwise Patroni's own announcement to the coordinator holds that
 * group's queries. Patroni's answer to /switchover is
 * not waited for: it comes on whole seconds (api.py poll_failover_result sleeps 1 s between looks
 * at the DCS), up to a second after the new leader is there; the group is watched instead, and a
 * refusal ends the wait.
 */
export async function gatedSwitchover(target: RolloutTarget, group: number, from: string, to: string, options: RolloutOptions = {}): Promise<SwitchoverReport> {
  const o = defaults(options);
  const gate = target.pooler !== undefined && (group === 0 || (await target.gatesWorkerSwitchovers?.().catch(() => false)) === true);
  const routed = group === 0 ? target.routedAlone?.bind(target) : (member: string) => target.routedWorker ? target.routedWorker(group, member) : Promise.resolve(true);
  // Best effort: a failed CHECKPOINT only lengthens the pause.
  await target.checkpoint?.(group, from).catch(() => undefined);
  const started = o.now();
  // Seconds from the start at which each phase ended, for the log.
  const phases: string[] = [];
  const mark = (phase: string) => phases.push(`${phase} ${((o.now() - started) / 1000).toFixed(2)}`);
  if (gate) {
    await target.pooler!.pause();
    mark("paused");
  }
  let refused: { error: unknown } | undefined;
  // Set by the request's callback: read through a call, which TypeScript does not narrow.
  const refusal = () => refused;
  let answer: Promise<void> = Promise.resolve();
  try {
    answer = target.switchover(group, from, to).then(
      () => void mark("answered"),
      (error: unknown) => {
        refused = { error };
      },
    );
    let leading = false;
    // Polled more often than other steps: clients wait through every poll interval here.
    await waitFor(`switchover ${from} -> ${to}: ${to} leading${gate ? (group === 0 ? " and routed alone" : " and in pg_dist_node") : ""}`, { ...o, pollMs: Math.min(o.pollMs, 50) }, async () => {
      if (refusal()) return true;
      const leader = (await target.members(group))?.find((m) => m.role === "leader" && m.state === "running");
      if (leader?.name !== to) return undefined;
      if (!leading) {
        leading = true;
        mark("leading");
      }
      if (gate && routed && !(await routed(to))) return undefined;
      return true;
    });
    const early = refusal();
    if (early) throw early.error;
    if (gate) mark("routed");
  } finally {
    if (gate) await target.pooler!.resume();
  }
  const seconds = (o.now() - started) / 1000;
  // Patroni's own answer, for a clean end (the outcome was seen above).
  await answer;
  const late = refusal();
  if (late) throw late.error;
  o.log(`rollout: group ${group}: switchover ${from} -> ${to} in ${seconds.toFixed(2)} s${gate ? " (PgBouncer paused)" : ""} [${phases.join(", ")}]`);
  return { group, from, to, seconds, paused: gate, startedAt: started };
}

/** Which members rollGroup restarts. */
export interface RollSelection {
  /** Every member, each once, whether or not Patroni marks it pending_restart (a new image). */
  all?: boolean;
  /**
   * These members, each once, whatever Patroni says (a container to replace); members not listed are
   * left alone. Takes precedence over `all`.
   */
  only?: string[];
  /**
   * Whether the former leader's demotion in a switchover counts as its restart (default true: Patroni
   * restarts PostgreSQL as a replica, which applies a parameter). false when the restart must be of
   * the member itself, e.g. its container replaced: the former leader is then restarted last.
   */
  demotionRestarts?: boolean;
}

/**
 * Restarts the members of `group` Patroni marks pending_restart (or the selected ones: `all`,
 * `only`), one at a time in rolloutPlan's order, re-planning after each step: a switchover restarts
 * the former leader as a replica, which then usually needs no restart of its own.
 */
export async function rollGroup(target: RolloutTarget, group: number, options: RolloutOptions & RollSelection = {}): Promise<Omit<GroupReport, "changed">> {
  const o = defaults(options);
  const first = await groupReady(target, group, false, o);
  const synchronous = first.some((m) => SYNCHRONOUS_ROLES.includes(m.role));
  const done = new Set<string>();
  const selected = options.only !== undefined || options.all === true;
  const updated = (m: Member) => (options.only ? !options.only.includes(m.name) || done.has(m.name) : options.all ? done.has(m.name) : !m.pendingRestart);
  const report: Omit<GroupReport, "changed"> = { group, restarted: [], switchovers: [] };
  for (let guard = 0; guard < first.length * 3 + 2; guard++) {
    const members = await groupReady(target, group, synchronous, o, first.length);
    const plan = rolloutPlan(members.map((m) => ({ name: m.name, role: m.role, updated: updated(m) })));
    const step: RolloutStep | undefined = plan[0];
    if (!step) return report;
    if (step.action === "switchover") {
      report.switchovers.push(await gatedSwitchover(target, group, step.from, step.to, options));
      // Patroni restarted the former leader as a replica (demotion): that counts as its restart.
      if (options.demotionRestarts !== false) done.add(step.from);
      continue;
    }
    o.log(`rollout: group ${group}: restarting ${step.member}`);
    await target.restart(group, step.member);
    done.add(step.member);
    report.restarted.push(step.member);
    await waitFor(`${step.member} back after its restart`, o, async () => {
      const member = (await target.members(group))?.find((m) => m.name === step.member);
      return member && healthy(member) && (selected || !member.pendingRestart) ? true : undefined;
    });
  }
  throw new Error(`rollout: group ${group}: members still pending a restart after ${first.length * 3 + 2} steps`);
}

/**
 * The first half of applyParameters: makes every group's dynamic configuration carry `wanted` (PATCH
 * /config where it differs) and, when anything was patched, waits `settleMs` for Patroni to reload
 * the members. Restarts nothing. Returns, per patched group, the parameters set or removed.
 */
export async function patchParameters(target: RolloutTarget, wanted: Parameters, options: RolloutOptions = {}): Promise<Map<number, string[]>> {
  const o = defaults(options);
  const changed = new Map<number, string[]>();
  for (const group of target.groups) {
    const patch = parameterPatch(await target.parameters(group), wanted);
    if (!patch) continue;
    await target.patchConfig(group, patch);
    changed.set(group, Object.keys(patch.postgresql.parameters));
    o.log(`rollout: group ${group}: dynamic configuration patched (${Object.keys(patch.postgresql.parameters).join(", ")})`);
  }
  if (changed.size > 0) await o.sleep(o.settleMs);
  return changed;
}

/**
 * Makes every group's dynamic configuration carry `wanted` (PATCH /config where it differs), waits
 * `settleMs` for Patroni to reload the members, then rolls each group whose members need a restart.
 * Groups are done one after the other; a group whose members need no restart is left alone.
 */
export async function applyParameters(target: RolloutTarget, wanted: Parameters, options: RolloutOptions = {}): Promise<RolloutReport> {
  const changed = await patchParameters(target, wanted, options);
  const groups: GroupReport[] = [];
  for (const group of target.groups) {
    const rolled = await rollGroup(target, group, options);
    groups.push({ ...rolled, changed: changed.get(group) ?? [] });
  }
  return { groups };
}

// The rollout deploy step (Kubernetes): what the rollout Job's pod runs during `pulumi up`
// (components/in-cluster-step.ts) when a Patroni group's pod template or the PostgreSQL parameters
// changed. With the day-two code of this folder, in this order:
// 1. patchParameters: every group's dynamic configuration made equal to the wanted parameters (a
//    reload everywhere; nothing restarted yet);
// 2. per group, in the order given (the program gives the worker groups first, the coordinator group
//    last): kubernetesRollout, the outdated pods deleted replicas first, a switchover, the former
//    leader's pod last; then rollGroup, the members Patroni still marks pending_restart restarted in
//    the same order. A new pod starts with the patched configuration, so a template change and a
//    parameter change made together cost one switchover per group, not two.
// No Pulumi import and no I/O of its own: the pod API and the Patroni target are given.
import type { PostgresConfigInputs } from "./apply.ts";
import { defaults, patchParameters, rollGroup, type RolloutOptions, type RolloutTarget, type SwitchoverReport } from "./orchestrate.ts";
import { kubernetesRollout, type PodApi } from "./kubernetes.ts";
import { patroniHttpTarget } from "./patroni-http.ts";

/** The rollout Job's input (its Secret's input.json): the PostgresConfig inputs, with StatefulSets and a namespace. */
export interface RolloutStepInputs extends Omit<PostgresConfigInputs, "groups"> {
  /** The namespace of the StatefulSets (the stack's kubernetesNamespace). */
  namespace: string;
  /**
   * Every Citus group, in the order they are rolled, with its StatefulSet and its members' Patroni
   * REST URLs (the pods' DNS names through the group's headless Service).
   */
  groups: { group: number; statefulSet: string; members: { name: string; restUrl: string }[] }[];
  /**
   * Label selectors of the router's pods (kubernetes: several PgBouncer and HAProxy pods behind one
   * Service each). Given, the coordinator's switchover pauses and resumes every ready PgBouncer pod
   * at its own address, and waits until every HAProxy pod routes to the new leader alone: through the
   * Service, PAUSE and RESUME could each reach a different pod and leave one paused. Omitted: the URLs
   * as they are (one PgBouncer, one HAProxy).
   */
  routers?: { pgbouncer: Record<string, string>; haproxy: Record<string, string> };
  /**
   * The credentials before the last password rotation (absent: none changed since): tried after the
   * current ones on a 401 or a refused login, since the pods not yet replaced still run with their
   * old files (Patroni's REST API user; PgBouncer's admin user is generated, never rotated).
   */
  previous?: { restAuth?: string };
}

/** A group's part of the report (stack output `rolloutReport`): no URL, no password. */
export interface RolloutStepGroupOutcome {
  group: number;
  statefulSet: string;
  /** Parameters set or removed in the group's dynamic configuration. */
  changed: string[];
  /** Pods deleted (and recreated from the current template), in order. */
  deleted: string[];
  /** Members restarted for a pending_restart, in order. */
  restarted: string[];
  /** "<from> -> <to> (<seconds> s[, PgBouncer paused])": seconds from the request until the new leader was routed. */
  switchovers: string[];
}

export interface RolloutStepResult {
  groups: RolloutStepGroupOutcome[];
  /** The whole step, s. */
  seconds: number;
}

/** A problem with the step's input: retrying cannot help (the Job fails at once). */
export class RolloutInputError extends Error {
  readonly final = true;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** Every problem of `inputs`, each naming the field, the value and what is allowed; empty when none. */
export function rolloutInputProblems(inputs: RolloutStepInputs): string[] {
  const problems: string[] = [];
  if (typeof inputs.namespace !== "string" || !DNS_LABEL.test(inputs.namespace)) {
    problems.push(`namespace: got ${JSON.stringify(inputs.namespace)}; allowed: a DNS label`);
  }
  if (!Array.isArray(inputs.groups) || inputs.groups.length === 0) {
    problems.push(`groups: got ${JSON.stringify(inputs.groups)}; allowed: at least one group`);
    return problems;
  }
  const seen = new Set<number>();
  for (const [i, g] of inputs.groups.entries()) {
    if (!Number.isInteger(g.group) || g.group < 0 || seen.has(g.group)) problems.push(`groups[${i}].group: got ${JSON.stringify(g.group)}; allowed: a Citus group number not given before`);
    seen.add(g.group);
    if (typeof g.statefulSet !== "string" || !DNS_LABEL.test(g.statefulSet)) problems.push(`groups[${i}].statefulSet: got ${JSON.stringify(g.statefulSet)}; allowed: a DNS label`);
    if (!Array.isArray(g.members) || g.members.length === 0) problems.push(`groups[${i}].members: got ${JSON.stringify(g.members)}; allowed: at least one member`);
  }
  if (!inputs.parameters || typeof inputs.parameters !== "object" || Array.isArray(inputs.parameters)) {
    problems.push(`parameters: got ${JSON.stringify(inputs.parameters)}; allowed: a map of PostgreSQL parameter names to values`);
  }
  if (!(inputs.stepTimeoutSeconds > 0)) problems.push(`stepTimeoutSeconds: got ${JSON.stringify(inputs.stepTimeoutSeconds)}; allowed: a positive number of seconds`);
  return problems;
}

/** A switchover as the report shows it. */
export function switchoverText(s: SwitchoverReport): string {
  return `${s.from} -> ${s.to} (${s.seconds.toFixed(2)} s${s.paused ? ", PgBouncer paused" : ""})`;
}

/**
 * The target with its pooler wrapped so that a PAUSE still held can be undone from outside: when the
 * Job's pod is stopped in the middle of a coordinator switchover (its deadline, a drain), `release`
 * sends RESUME, so that clients are not left waiting on a paused PgBouncer. Resolves true when it resumed.
 */
export function withPauseGuard(target: RolloutTarget): { target: RolloutTarget; release(): Promise<boolean> } {
  const pooler = target.pooler;
  if (!pooler) return { target, release: async () => false };
  let paused = false;
  const guarded: RolloutTarget = Object.create(target);
  Object.defineProperty(guarded, "pooler", {
    value: {
      pause: async () => {
        paused = true;
        await pooler.pause();
      },
      resume: async () => {
        await pooler.resume();
        paused = false;
      },
    },
  });
  return {
    target: guarded,
    release: async () => {
      if (!paused) return false;
      await pooler.resume();
      paused = false;
      return true;
    },
  };
}

/** A postgresql:// URL with its host replaced by `ip` (user, password, port and database kept). */
export function urlAt(url: string, ip: string): string {
  const parsed = new URL(url);
  parsed.hostname = ip.includes(":") ? `[${ip}]` : ip;
  return parsed.toString();
}

/** The ready pods a label selector finds, with their addresses (pod-api.ts readyPodAddresses). */
export type RouterPods = (matchLabels: Record<string, string>) => Promise<{ name: string; ip: string }[]>;

/**
 * `target` with its pooler and routedAlone taken pod by pod (see RolloutStepInputs.routers): PAUSE
 * (then RECONNECT) on every ready PgBouncer pod, and if one fails, RESUME on those already paused
 * before the error goes on; RESUME on every pod paused, each tried (the first error thrown after);
 * routed alone once every ready HAProxy pod routes to the new leader alone. Each pod's calls are
 * patroniHttpTarget's own (the same PAUSE/RECONNECT and routing probes), at the pod's address.
 */
export function withRouterPods(
  target: RolloutTarget,
  inputs: RolloutStepInputs,
  routers: NonNullable<RolloutStepInputs["routers"]>,
  list: RouterPods,
  // One pod's pooler or routing check (the tests': a recorder).
  // A pod's address is on no certificate: the Service's name (the inputs' URL host) is verified instead.
  at: (one: { poolerAdminUrl?: string | string[]; readWriteUrl?: string }) => Pick<RolloutTarget, "pooler" | "routedAlone"> = (one) =>
    patroniHttpTarget({
      ...inputs,
      groups: [],
      poolerAdminUrl: undefined,
      readWriteUrl: undefined,
      haproxyStats: undefined,
      ...one,
      routerServerName: new URL(one.poolerAdminUrl ? inputs.poolerAdminUrl : inputs.readWriteUrl).hostname,
    }),
): RolloutTarget {
  // PgBouncer's admin URL at a pod's address.
  const adminUrlsAt = (ip: string) => [urlAt(inputs.poolerAdminUrl, ip)];
  let paused: { name: string; url: string[] }[] = [];
  const resumeAll = async () => {
    const failed: { name: string; url: string[] }[] = [];
    let first: unknown;
    for (const pod of paused) {
      try {
        await at({ poolerAdminUrl: pod.url }).pooler!.resume();
      } catch (error) {
        failed.push(pod);
        first ??= new Error(`rollout: RESUME of PgBouncer pod ${pod.name} failed: ${(error as Error).message}`);
      }
    }
    paused = failed;
    if (first) throw first;
  };
  const pooler = {
    pause: async () => {
      const pods = await list(routers.pgbouncer);
      if (pods.length === 0) throw new Error(`rollout: no ready PgBouncer pod (${JSON.stringify(routers.pgbouncer)}) to pause`);
      for (const pod of pods) {
        const url = adminUrlsAt(pod.ip);
        try {
          paused.push({ name: pod.name, url });
          await at({ poolerAdminUrl: url }).pooler!.pause();
        } catch (error) {
          await resumeAll().catch(() => undefined);
          throw new Error(`rollout: PAUSE of PgBouncer pod ${pod.name} failed (the others resumed): ${(error as Error).message}`);
        }
      }
    },
    resume: resumeAll,
  };
  const routedAlone = async (member: string) => {
    const pods = await list(routers.haproxy);
    if (pods.length === 0) return false;
    for (const pod of pods) if (!(await at({ readWriteUrl: urlAt(inputs.readWriteUrl, pod.ip) }).routedAlone!(member))) return false;
    return true;
  };
  return Object.create(target, { pooler: { value: pooler }, routedAlone: { value: routedAlone } });
}

export interface RolloutStepDeps {
  /** The StatefulSets' pods (components/platform/kubernetes/pod-api.ts in the Job's pod). */
  pods: PodApi;
  /** Patroni, PgBouncer and HAProxy; default: patroniHttpTarget of the inputs. */
  target?: RolloutTarget;
  /** Finds the router's pods (inputs.routers); without it the URLs are used as they are. */
  routerPods?: RouterPods;
  log?: (line: string) => void;
  /** Waits and clocks (the tests'); the step timeout is the inputs'. */
  options?: Omit<RolloutOptions, "stepTimeoutMs" | "log">;
  /** Receives the function that undoes a held PAUSE, for the process's SIGTERM handler. */
  onTerminate?: (release: () => Promise<boolean>) => void;
}

/**
 * Applies the wanted parameters and replaces every outdated pod, group after group (see the top of
 * this file). Throws RolloutInputError on a bad input; any other error (a step not done within
 * stepTimeoutSeconds, an API refusal) leaves the cluster healthy or with one member catching up, and
 * a new run resumes from what it finds.
 */
export async function runRolloutStep(inputs: RolloutStepInputs, deps: RolloutStepDeps): Promise<RolloutStepResult> {
  const problems = rolloutInputProblems(inputs);
  if (problems.length > 0) throw new RolloutInputError(`rollout: invalid input (${problems.length} problems): ${problems.join("; ")}`);
  const log = deps.log ?? (() => undefined);
  const options: RolloutOptions = { ...deps.options, stepTimeoutMs: inputs.stepTimeoutSeconds * 1000, log };
  const o = defaults(options);
  const started = o.now();
  // The inputs carry every field of PatroniHttpSpec they have (the REST credentials, PgBouncer's and
  // HAProxy's URLs, and whatever a later transport adds); the groups keep the given order.
  const given =
    deps.target ??
    patroniHttpTarget({
      ...inputs,
      // Members not yet replaced still check the previous REST password (a rotation in this `up`).
      restAuth: [inputs.restAuth, ...(inputs.previous?.restAuth ? [inputs.previous.restAuth] : [])],
      poolerAdminUrl: [inputs.poolerAdminUrl],
    });
  const base = inputs.routers && deps.routerPods ? withRouterPods(given, inputs, inputs.routers, deps.routerPods) : given;
  // The groups in the inputs' order, for the parameters too (patchParameters walks target.groups).
  const ordered: RolloutTarget = Object.create(base, { groups: { value: inputs.groups.map((g) => g.group) } });
  const guard = withPauseGuard(ordered);
  deps.onTerminate?.(guard.release);
  const target = guard.target;
  const changed = await patchParameters(target, inputs.parameters, options);
  const groups: RolloutStepGroupOutcome[] = [];
  for (const g of inputs.groups) {
    const pods = await kubernetesRollout(deps.pods, target, g.group, g.statefulSet, options);
    const rolled = await rollGroup(target, g.group, options);
    const outcome: RolloutStepGroupOutcome = {
      group: g.group,
      statefulSet: g.statefulSet,
      changed: changed.get(g.group) ?? [],
      deleted: pods.deleted,
      restarted: rolled.restarted,
      switchovers: [...pods.switchovers, ...rolled.switchovers].map(switchoverText),
    };
    log(`rollout: ${g.statefulSet}: ${outcome.deleted.length} pods deleted, ${outcome.restarted.length} members restarted, switchovers: ${outcome.switchovers.join("; ") || "none"}`);
    groups.push(outcome);
  }
  return { groups, seconds: Math.round((o.now() - started) / 100) / 10 };
}

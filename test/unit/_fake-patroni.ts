// A fake Patroni group set for the rollout's unit tests: members with roles, a DCS config per group,
// pending_restart set by a PATCH of a restart-only parameter, cleared by a restart or a demotion;
// every call recorded, with whether PgBouncer was paused at the time.
import type { ConfigPatch, Parameters } from "../../components/rollout/parameters.ts";
import type { Member, RolloutTarget } from "../../components/rollout/orchestrate.ts";

/** Parameters whose change needs a restart (PostgreSQL's postmaster context), for the fake. */
const RESTART_ONLY = new Set(["shared_buffers", "max_connections"]);

export class FakePatroni implements RolloutTarget {
  readonly groups: number[];
  readonly members = async (group: number): Promise<Member[] | undefined> => this.state.get(group)!.map((m) => ({ ...m }));
  readonly state = new Map<number, Member[]>();
  readonly config = new Map<number, Parameters>();
  readonly events: string[] = [];
  paused = false;
  /** The pooler's paused state at each switchover request. */
  readonly pausedAtSwitchover: boolean[] = [];
  /** Members that keep their pending_restart through a demotion (Patroni restarted them... or not). */
  readonly keepPendingOnDemotion = new Set<string>();

  constructor(groups: Record<number, Member[]>, parameters: Parameters = { work_mem: "4MB", shared_buffers: "128MB" }) {
    this.groups = Object.keys(groups).map(Number);
    for (const [group, members] of Object.entries(groups)) {
      this.state.set(Number(group), members.map((m) => ({ ...m })));
      this.config.set(Number(group), { ...parameters });
    }
  }

  async parameters(group: number): Promise<Parameters> {
    return { ...this.config.get(group)! };
  }

  async patchConfig(group: number, patch: ConfigPatch): Promise<void> {
    this.events.push(`patch ${group} ${Object.keys(patch.postgresql.parameters).sort().join(",")}`);
    const config = this.config.get(group)!;
    for (const [name, value] of Object.entries(patch.postgresql.parameters)) {
      if (value === null) delete config[name];
      else config[name] = value;
      if (RESTART_ONLY.has(name)) for (const m of this.state.get(group)!) m.pendingRestart = true;
    }
  }

  async restart(group: number, member: string): Promise<void> {
    const m = this.state.get(group)!.find((x) => x.name === member)!;
    this.events.push(`restart ${group} ${member} (${m.role})`);
    m.pendingRestart = false;
  }

  async switchover(group: number, leader: string, candidate: string): Promise<void> {
    this.events.push(`switchover ${group} ${leader}->${candidate}`);
    this.pausedAtSwitchover.push(this.paused);
    const members = this.state.get(group)!;
    const from = members.find((m) => m.name === leader)!;
    const to = members.find((m) => m.name === candidate)!;
    if (from.role !== "leader") throw new Error(`${leader} is not the leader`);
    if (members.some((m) => m.role === "sync_standby") && to.role !== "sync_standby") throw new Error(`${candidate} is not the synchronous standby`);
    [from.role, to.role] = [to.role, "leader"];
    [from.state, to.state] = ["streaming", "running"];
    // A demotion restarts PostgreSQL as a replica: it then runs the new configuration.
    if (!this.keepPendingOnDemotion.has(leader)) from.pendingRestart = false;
  }

  readonly pooler = {
    pause: async () => {
      this.events.push("pause");
      this.paused = true;
    },
    resume: async () => {
      this.events.push("resume");
      this.paused = false;
    },
  };

  /** Set by a test: worker switchovers gated, and when Citus routes a group to a member. */
  gatesWorkerSwitchovers?: () => Promise<boolean>;
  routedWorker?: (group: number, member: string) => Promise<boolean>;

  async routedAlone(member: string): Promise<boolean> {
    return this.groups.some((g) => this.state.get(g)!.some((m) => m.name === member && m.role === "leader"));
  }
}

export const member = (name: string, role: string): Member => ({ name, role, state: role === "leader" ? "running" : "streaming", pendingRestart: false });

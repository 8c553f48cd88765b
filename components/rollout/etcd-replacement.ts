// Replacing the etcd members' containers one at a time, inside one `pulumi up` (a new etcdImage, or
// any other change of an etcd container's inputs). As for the Patroni groups (replacement.ts), the
// Pulumi program registers a member's container only when `turn()` resolves, so the engine replaces
// it only then. Each outdated member gets its turn only once the previous one's new container runs
// with the wanted inputs and its health check passes again (`etcdctl endpoint health` with its own
// certificate, components/etcd.ts: it passes only when the member serves and the cluster it belongs
// to has a leader). Its data volume and its name, peer URLs and initial cluster are unchanged, so it
// comes back as the same member with its data (etcd's `--initial-cluster-state` is ignored once the
// data directory holds a member). Replacing all three at once would take the DCS away from Patroni
// for longer than its retry_timeout: every primary would demote itself. A member whose container
// runs the wanted inputs already, or has none yet (created, not replaced), gets its turn at once.
// No I/O of its own: the environment (the container engine) is handed in.
import { defaults, waitFor, type RolloutOptions } from "./orchestrate.ts";
import { deferred, type Deferred, type DeployedContainer } from "./replacement.ts";

/** What the etcd roll needs from outside: each member's container as the engine runs it now. */
export interface EtcdReplacementEnvironment {
  /** The member's container now (its health from the engine's health check); undefined when none exists. */
  deployed(member: string): Promise<(DeployedContainer & { healthy?: boolean }) | undefined>;
  /**
   * Patroni's maintenance mode on every group: on (true) before the first member is replaced, off
   * once the last one is healthy again (also when the roll fails). A stopping etcd member can answer
   * a lease keepalive with an error Patroni does not retry elsewhere ("malformed header: missing HTTP
   * content-type", seen with Patroni 4.0.7): a primary connected to it then fails its leader-lock
   * update and demotes itself (ha.py), unless the cluster is paused. Omitted: no pause.
   */
  maintenance?(paused: boolean): Promise<void>;
}

export interface EtcdReplacementOptions extends Pick<RolloutOptions, "log" | "sleep" | "pollMs" | "now" | "stepTimeoutMs"> {
  /**
   * The longest wait from a member's turn until its new container runs and is healthy, ms: the engine
   * stops the old one first (its stop grace period), then the health check runs every few seconds.
   */
  replaceTimeoutMs?: number;
}

/** What the roll did: the members replaced, in order, and how long each took from its turn until healthy (s). */
export interface EtcdReplacementReport {
  replaced: { member: string; seconds: number }[];
}

export class EtcdRollingReplacement {
  private readonly wanted = new Map<string, string>();
  private readonly gates = new Map<string, Deferred<void>>();
  private finished?: Deferred<EtcdReplacementReport>;

  constructor(private readonly members: string[], private readonly environment: EtcdReplacementEnvironment, private readonly options: EtcdReplacementOptions = {}) {
    for (const member of members) this.gates.set(member, deferred());
  }

  /**
   * Resolves when `member`'s container may be registered with the inputs whose fingerprint is
   * `fingerprint`; rejects when the roll fails. Once every member has asked, the roll starts.
   */
  turn(member: string, fingerprint: string): Promise<void> {
    const gate = this.gates.get(member);
    if (!gate) throw new Error(`etcd rolling replacement: ${member} is not an etcd member (${this.members.join(", ")})`);
    if (this.wanted.has(member)) throw new Error(`etcd rolling replacement: ${member} asked for its turn twice`);
    this.wanted.set(member, fingerprint);
    if (this.members.every((m) => this.wanted.has(m))) {
      // Its failure rejects the gates (the registrations fail with it) and done(); never unhandled.
      this.finished = deferred();
      this.roll().then(this.finished.resolve, this.finished.reject);
    }
    return gate.promise;
  }

  /** Resolves with the report once every member has had its turn; rejects with the roll's failure. */
  async done(): Promise<EtcdReplacementReport> {
    const o = defaults(this.options);
    await waitFor("every etcd member asking for its turn", o, async () => (this.finished ? true : undefined));
    return this.finished!.promise;
  }

  private async roll(): Promise<EtcdReplacementReport> {
    const o = defaults(this.options);
    const report: EtcdReplacementReport = { replaced: [] };
    try {
      const deployed = await Promise.all(this.members.map((m) => this.environment.deployed(m)));
      const outdated = this.members.filter((m, i) => deployed[i] !== undefined && deployed[i]!.fingerprint !== this.wanted.get(m));
      for (const member of this.members) if (!outdated.includes(member)) this.gates.get(member)!.resolve();
      if (outdated.length === 0) return report;
      o.log(`etcd rolling replacement: replacing ${outdated.join(", ")} one at a time`);
      if (this.environment.maintenance) {
        await this.environment.maintenance(true);
        o.log("etcd rolling replacement: Patroni maintenance mode on (no primary demotes itself over a failed leader-lock update while a member stops)");
      }
      try {
        await this.replaceEach(outdated, report);
      } finally {
        if (this.environment.maintenance) {
          await this.environment.maintenance(false);
          o.log("etcd rolling replacement: Patroni maintenance mode off");
        }
      }
      return report;
    } catch (error) {
      const failure = new Error(`etcd rolling replacement: ${(error as Error).message}`);
      for (const gate of this.gates.values()) gate.reject(failure);
      throw failure;
    }
  }

  /** Each outdated member in turn: its gate opened, then wait until its new container is healthy. */
  private async replaceEach(outdated: string[], report: EtcdReplacementReport): Promise<void> {
    const o = defaults(this.options);
    const replaceTimeoutMs = this.options.replaceTimeoutMs ?? o.stepTimeoutMs;
    for (const member of outdated) {
      const started = o.now();
      o.log(`etcd rolling replacement: ${member}'s turn`);
      this.gates.get(member)!.resolve();
      await waitFor(`etcd ${member}: its new container running and healthy`, { ...o, stepTimeoutMs: replaceTimeoutMs }, async () => {
        const now = await this.environment.deployed(member).catch(() => undefined);
        return now?.running && now.healthy && now.fingerprint === this.wanted.get(member) ? true : undefined;
      });
      const seconds = (o.now() - started) / 1000;
      o.log(`etcd rolling replacement: ${member} healthy again after ${seconds.toFixed(1)} s`);
      report.replaced.push({ member, seconds });
    }
  }
}

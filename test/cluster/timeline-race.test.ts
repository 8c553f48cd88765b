// The timeline-ID race of two failovers in a row (README "Second failure", components/render/timeline-guard.ts):
// the first primary A back while B leads (Patroni recovers it in single-user mode: its timeline 1
// ends past B's fork), B killed as soon as the third member C follows B's new timeline (before B's
// HA loop writes /history). Without the guard A could win the race ("ahead" on timeline 1) and
// promote to a second timeline 2. Asserted: the leader holds every acknowledged write, no two
// members hold one timeline ID with different histories, every member's rows equal the leader's,
// and every member follows again without a reinitialization.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import pg from "pg";
import type { PostgresNode } from "../../components/spec.ts";
import { clusterMembers } from "../../local/patroni-api.ts";
import { pollUntil } from "../../local/processes.ts";
import { ContinuousWriter, missingWrites } from "../../local/writer.ts";
import { runningCluster } from "./context.ts";
import { quietClient } from "../../components/pg-client.ts";

const cluster = runningCluster();
const adminUrl = () => cluster.primaryUrl(cluster.config.database);

async function query<T extends pg.QueryResultRow>(node: PostgresNode, sql: string, database = "postgres"): Promise<T[] | undefined> {
  const client = quietClient({ connectionString: cluster.nodeUrl(node, database), connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    return (await client.query<T>(sql)).rows;
  } catch {
    return undefined;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The timeline a node's walreceiver streams (undefined: not streaming or not reachable). */
async function receivedTimeline(node: PostgresNode): Promise<number | undefined> {
  const rows = await query<{ received_tli: number | null }>(node, "SELECT received_tli FROM pg_stat_wal_receiver");
  return rows?.[0]?.received_tli ?? undefined;
}

/** Every timeline history file in a node's pg_wal: name -> content. */
function historyFiles(node: PostgresNode): Map<string, string> {
  const dir = join(cluster.layout.postgres(node).dataDir, "pg_wal");
  return new Map(readdirSync(dir).filter((f) => /^[0-9A-F]{8}\.history$/.test(f)).map((f) => [f, readFileSync(join(dir, f), "utf8")]));
}

/** A node's log lines after `from` (ms since epoch) matching `pattern`, as "HH:MM:SS.mmm text". */
function logLines(node: PostgresNode, from: number, pattern: RegExp): string[] {
  return readFileSync(cluster.logFile(node.name), "utf8")
    .split("\n")
    .filter((line) => {
      const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)[.,](\d{3})/.exec(line);
      return m !== null && Date.parse(`${m[1]}T${m[2]}.${m[3]}Z`) >= from && pattern.test(line);
    })
    .map((line) => `${node.name} ${line.slice(11, 23)}${line.slice(23).replace(/^\S* ?(UTC )?(\[\d+\] )?/, " ")}`);
}

test.serial("coordinator: A back while B leads, B killed as soon as C follows its timeline: the member with every acknowledged write leads, no timeline ID with two histories, all members' rows equal the leader's, 0 lost", async (t) => {
  const table = "timeline_race_local";
  const group = 0;
  await ContinuousWriter.createTable(adminUrl(), table, "app", { local: true });
  const writer = new ContinuousWriter({ table, connectionString: async () => cluster.pgbouncerUrl("app") });
  writer.start();
  const down: PostgresNode[] = [];
  const started = Date.now();
  try {
    await cluster.waitGroupHealthy(group, 120000);
    await pollUntil(30000, 100, async () => (writer.acknowledgedCount >= 20 ? true : undefined));
    const a = (await cluster.leader(group))!;
    // The timeline A's standbys stream now: the one B's promotion will leave.
    const timelineBefore = Math.max(...(await Promise.all(cluster.topology.groups[group].filter((n) => n.name !== a.name).map(async (n) => (await receivedTimeline(n)) ?? 0))));
    t.true(timelineBefore > 0, "A's standbys stream from it");
    const aAt = Date.now();
    cluster.killNode(a);
    down.push(a);
    // A back as soon as another member holds the key (as a restart policy brings it back).
    const b = await pollUntil(90000, 50, async () => {
      const leader = await cluster.leader(group);
      return leader && leader.name !== a.name ? leader : undefined;
    });
    if (!b) throw new Error("no new leader within 90 s of the first kill");
    const bLeadsAt = Date.now();
    cluster.startPatroni(a);
    down.splice(down.indexOf(a), 1);
    const c = cluster.topology.groups[group].find((n) => n.name !== a.name && n.name !== b.name)!;
    // B killed the moment C streams B's new timeline: C holds B's history file, B has most likely not
    // yet written /history (its next HA loop would).
    const cFollows = await pollUntil(30000, 20, async () => ((await receivedTimeline(c)) ?? 0) > timelineBefore ? true : undefined);
    t.true(cFollows, `${c.name} followed ${b.name}'s new timeline`);
    const bAt = Date.now();
    cluster.killNode(b);
    down.push(b);
    let third = await pollUntil((cluster.config.patroniTtl + 30) * 1000, 100, async () => {
      const leader = await cluster.leader(group);
      return leader && leader.name !== b.name ? leader : undefined;
    });
    // B back too, as a restart policy would: it must follow without a reinitialization. When nobody
    // took over, the /sync key B left forbade C to lead without it (B had stepped C out of the voters
    // before C streamed its timeline: README "Quorum commit", Patroni's guarantee); B then leads again.
    if (!third) t.log(`NOTE: no leader within ttl + 30 s of ${b.name}'s kill (the /sync key forbids ${c.name} to lead alone); starting ${b.name}`);
    cluster.startPatroni(b);
    down.splice(down.indexOf(b), 1);
    third ??= await pollUntil(120000, 100, async () => cluster.leader(group));
    if (!third) throw new Error(`no leader within 120 s of starting ${b.name} again`);
    const back = await pollUntil(60000, 100, async () => writer.recoveredAfterFailure(bAt));
    const members = await clusterMembers(cluster.topology.groups[group].map((n) => cluster.restUrl(n)));
    const result = await writer.stop();
    let healthy = true;
    await cluster.waitGroupHealthy(group, 180000).catch(() => (healthy = false));
    const evidence = cluster.topology.groups[group].flatMap((n) =>
      logLines(n, aAt, /timeline guard|not a child|pre_promote|promoted self|acquired session lock|running pg_rewind|pg_rewind exit|has already been removed|Releasing the leader key/),
    );
    t.log(
      `${a.name} killed; ${b.name} led ${((bLeadsAt - aAt) / 1000).toFixed(1)} s later and ${a.name} was started; ` +
        `${b.name} killed ${((bAt - bLeadsAt) / 1000).toFixed(1)} s after it led, as ${c.name} followed its timeline; ${third.name} leads (timeline ${members?.find((m) => m.name === third.name)?.timeline}); ` +
        `writes back ${back ? ((back - bAt) / 1000).toFixed(1) : "never"} s after ${b.name}'s kill; ${result.acknowledged.length} acknowledged, ${result.errors} failed attempts`,
    );
    t.log(`logs: ${evidence.sort((x, y) => x.slice(x.indexOf(" ") + 1).localeCompare(y.slice(y.indexOf(" ") + 1))).slice(-40).join(" | ")}`);
    t.true(healthy, "every member follows the leader again within 180 s, without a reinitialization");
    t.not(third.name, a.name, `${a.name} (WAL past ${b.name}'s fork) did not lead`);
    t.deepEqual(await missingWrites(adminUrl(), table, result.acknowledged), [], "every acknowledged write is present");

    // Every member replays up to the leader's current position, then holds exactly the leader's rows.
    const leader = (await cluster.leader(group))!;
    const [{ lsn }] = (await query<{ lsn: string }>(leader, "SELECT pg_current_wal_lsn()::text AS lsn"))!;
    const rowsOf = async (node: PostgresNode) =>
      (await query<{ seqs: string }>(node, `SELECT coalesce(string_agg(seq::text, ',' ORDER BY seq), '') AS seqs FROM ${table}`, cluster.config.database))?.[0]?.seqs;
    const leaderRows = await rowsOf(leader);
    for (const node of cluster.topology.groups[group].filter((n) => n.name !== leader.name)) {
      const caughtUp = await pollUntil(60000, 200, async () => {
        const rows = await query<{ ok: boolean }>(node, `SELECT pg_last_wal_replay_lsn() >= '${lsn}'::pg_lsn AS ok`);
        return rows?.[0]?.ok ? true : undefined;
      });
      t.true(caughtUp, `${node.name} replayed up to the leader's ${lsn}`);
      t.is(await rowsOf(node), leaderRows, `${node.name} holds the leader's rows of ${table}`);
    }

    // One history per timeline ID across the group.
    const seen = new Map<string, Map<string, string[]>>();
    for (const node of cluster.topology.groups[group]) {
      for (const [file, content] of historyFiles(node)) {
        const byContent = seen.get(file) ?? new Map<string, string[]>();
        byContent.set(content, [...(byContent.get(content) ?? []), node.name]);
        seen.set(file, byContent);
      }
    }
    for (const [file, byContent] of seen) {
      t.is(byContent.size, 1, `${file}: ${[...byContent].map(([content, nodes]) => `${nodes.join(",")}: ${JSON.stringify(content)}`).join(" / ")}`);
    }
    t.log(`histories: ${[...seen].map(([file, byContent]) => `${file} on ${[...byContent.values()].flat().join(",")}`).join("; ")} (${((Date.now() - started) / 1000).toFixed(0)} s in all)`);
  } finally {
    await writer.stop();
    down.forEach((node) => cluster.startPatroni(node));
    await cluster.waitGroupHealthy(group, 180000).catch(() => undefined);
  }
});

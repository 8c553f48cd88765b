// The promotion that PANICked on a partly streamed segment (README "A promotion that PANICked on a
// partly streamed segment", seen once in a full run), built deterministically with the local
// PostgreSQL (test/cluster/_partial-segment.ts; the Docker test runs the same in a database
// container). Asserted: without the guard this PostgreSQL stops at promotion with that PANIC; with
// the rendered timeline guard run as Patroni runs it (pre_promote), the same state promotes to
// timeline 3 with every row C had replayed, takes writes, and the short file is kept as .partial.
import { chownSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { localAddressing } from "../../local/layout.ts";
import { postgresIds, runAsPostgresAsync } from "../../local/processes.ts";
import { runningCluster } from "./context.ts";
import { cleanUpPartialSegmentScenario, runPartialSegmentScenario, type ScenarioHost } from "./_partial-segment.ts";

const cluster = runningCluster();
const coordinator = cluster.topology.groups[0][0];
const layout = cluster.layout.postgres(coordinator);
const parent = join(cluster.paths.stateDir, "partial-segment");
const host: ScenarioHost = {
  run: async (command) => {
    const r = await runAsPostgresAsync(command);
    return { code: r.status ?? -1, output: r.output };
  },
  binDir: layout.binDir,
  root: join(parent, "instances"),
};

test.after.always(() => cleanUpPartialSegmentScenario(host));

test.serial("a standby whose newer-timeline segment file holds less than it replayed: PostgreSQL PANICs at promotion; the timeline guard's pre_promote sets the file aside and the promotion keeps every replayed row", async (t) => {
  // The state directory is root's (0711); the scenario's own directory is the postgres user's.
  const { uid, gid } = postgresIds();
  mkdirSync(parent, { recursive: true, mode: 0o700 });
  chownSync(parent, uid, gid);
  const r = await runPartialSegmentScenario(host, cluster.config, cluster.topology, coordinator, localAddressing(cluster.topology), layout);
  t.log(`C replayed to ${r.replayedLsn} on timeline 1; B forked timeline 2 at ${r.fork}; ${r.newer} held ${r.written} of the ${r.replayedOffset} bytes C replayed`);
  t.false(r.unguardedRunning, "without the guard PostgreSQL stops at promotion");
  t.regex(r.panic ?? "", new RegExp(`PANIC:\\s+invalid magic number 0000 in (log|WAL) segment ${r.newer}`));
  t.is(r.guardExit, 0, r.guardLog);
  t.regex(r.guardLog, new RegExp(`${r.newer} holds ${r.written} bytes of the ${r.replayedOffset} this member replayed from 00000001${r.newer.slice(8)}: set aside as ${r.newer}\\.partial`));
  t.true(r.partialKept);
  t.true(r.promoted, r.promoteOutput);
  t.is(r.timeline, 3, "a new timeline past B's");
  t.deepEqual([r.rows, r.maxId], [4000, 4000], "every row it had replayed");
  t.true(r.writableAfter, "it takes writes");
  t.log(`unguarded: ${r.panic}; guarded: promoted to timeline ${r.timeline} with ${r.rows} rows (${r.seconds.toFixed(1)} s for the scenario)`);
});

// What a query touches under Citus, read from its EXPLAIN: tasks (one per shard queried), the worker
// nodes they ran on, and the scan each shard's plan uses. Shared by the benchmark report and the tests.
import type pg from "pg";

export interface DistributedPlan {
  /** Shards the query runs on (Citus "Task Count"); 0 for a plan without Citus' custom scan. */
  tasks: number;
  /** Distinct worker nodes ("host=... port=...") of those tasks. */
  workers: string[];
  /** Tasks whose remote plan scans the named index (`indexPrefix`, shard suffixes included). */
  indexTasks: number;
  /** Every index scanned by any task. */
  indexes: string[];
}

interface Task {
  Node?: string;
  "Remote Plan"?: unknown;
}

function collect(node: unknown, key: string, into: unknown[]): void {
  if (Array.isArray(node)) node.forEach((child) => collect(child, key, into));
  else if (node && typeof node === "object") {
    for (const [name, value] of Object.entries(node)) {
      if (name === key) into.push(value);
      else collect(value, key, into);
    }
  }
}

/** Every index a JSON plan scans, at any depth, sorted. */
export function indexNames(plan: unknown): string[] {
  const names: unknown[] = [];
  collect(plan, "Index Name", names);
  return [...new Set(names.map(String))].sort();
}

/**
 * Summarises a JSON EXPLAIN of a Citus query (`EXPLAIN (FORMAT JSON)` with
 * `citus.explain_all_tasks = on`, so that every task's remote plan is listed). `indexPrefix` names
 * the index to count: on a shard it is called `<index>_<shardid>`.
 */
export function summarizeDistributedPlan(plan: unknown, indexPrefix: string): DistributedPlan {
  const jobs: unknown[] = [];
  collect(plan, "Job", jobs);
  const job = jobs[0] as { "Task Count"?: number; Tasks?: Task[] } | undefined;
  if (!job) return { tasks: 0, workers: [], indexTasks: 0, indexes: [] };
  const tasks = job.Tasks ?? [];
  const all = new Set<string>();
  let indexTasks = 0;
  for (const task of tasks) {
    const names = indexNames(task["Remote Plan"]);
    names.forEach((name) => all.add(name));
    if (names.some((name) => name.startsWith(indexPrefix))) indexTasks++;
  }
  const workers = [...new Set(tasks.map((task) => (task.Node ?? "").replace(/ dbname=\S+/, "")))].filter(Boolean).sort();
  return { tasks: job["Task Count"] ?? tasks.length, workers, indexTasks, indexes: [...all].sort() };
}

/**
 * `text` with each `$n` replaced by its value as a quoted literal (strings, numbers, or arrays of
 * them as array literals). Citus cannot fetch a shard's remote plan for a parameterised EXPLAIN
 * ("Could not get remote plan."), so the values go into the text.
 */
export function inlineParameters(client: pg.ClientBase, text: string, values: unknown[]): string {
  const literal = (value: unknown): string => {
    if (Array.isArray(value)) return client.escapeLiteral(`{${value.map((v) => `"${String(v).replace(/["\\]/g, "\\$&")}"`).join(",")}}`);
    return client.escapeLiteral(String(value));
  };
  // One pass: a value's own text is never read as a parameter.
  return text.replace(/\$(\d+)/g, (_, n: string) => literal(values[Number(n) - 1]));
}

/**
 * EXPLAINs `text` with `values` in a transaction of its own (SET LOCAL, so nothing leaks into a
 * pooled session) and summarises it. `settings` (name -> value) are SET LOCAL first; under Citus
 * they reach the shards' plans (citus.propagate_set_commands = local). Errors: whatever the server
 * says of the query.
 */
export async function explainDistributed(
  client: pg.ClientBase,
  text: string,
  values: unknown[],
  indexPrefix: string,
  settings: Record<string, string> = {},
): Promise<DistributedPlan> {
  await client.query("BEGIN");
  try {
    await client.query("SET LOCAL citus.explain_all_tasks = on");
    // SET LOCAL commands, not set_config(): Citus propagates the commands to the shards' sessions only.
    for (const [name, value] of Object.entries(settings)) {
      if (!/^[a-z_][a-z0-9_.]*$/.test(name)) throw new Error(`explainDistributed: "${name}" is not a setting name`);
      await client.query(`SET LOCAL ${name} = ${client.escapeLiteral(value)}`);
    }
    const result = await client.query(`EXPLAIN (FORMAT JSON) ${inlineParameters(client, text, values)}`);
    await client.query("COMMIT");
    return summarizeDistributedPlan(result.rows[0]["QUERY PLAN"], indexPrefix);
  } catch (error) {
    await client.query("ROLLBACK");
    throw error;
  }
}

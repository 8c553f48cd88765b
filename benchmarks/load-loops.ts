// The three ways the suite drives load. Closed loop: each client sends its next operation when the
// previous one returns (latency hides queueing). Open loop: operations start on a fixed schedule and
// latency runs from the *scheduled* start, so time spent waiting behind a slow server counts (as
// pgbench -R and wrk2 do). Connections are opened before timing starts.
import type pg from "pg";
import { LatencyRecorder, nowMs } from "./latency.ts";

export type Queryable = pg.ClientBase | pg.Pool;

export interface Operation {
  /** Kind of operation, for per-kind latency (e.g. single-shard, cross-shard, insert). */
  name: string;
  run(db: Queryable): Promise<unknown>;
}

export interface LoopResult {
  overall: LatencyRecorder;
  byOperation: Map<string, LatencyRecorder>;
  seconds: number;
  /** Open loop: how late the generator started operations (its own lag, part of their latency). */
  dispatchLag?: LatencyRecorder;
}

function recorderFor(map: Map<string, LatencyRecorder>, name: string): LatencyRecorder {
  let recorder = map.get(name);
  if (!recorder) map.set(name, (recorder = new LatencyRecorder()));
  return recorder;
}

async function timed(operation: Operation, db: Queryable, startedAt: number, result: LoopResult): Promise<void> {
  try {
    await operation.run(db);
    const elapsed = nowMs() - startedAt;
    result.overall.recordMs(elapsed);
    recorderFor(result.byOperation, operation.name).recordMs(elapsed);
  } catch (error) {
    result.overall.recordError(error);
    recorderFor(result.byOperation, operation.name).recordError(error);
  }
}

/** Checks out `clients` connections and proves each works, so connecting is never timed. */
async function checkOutConnections(pool: pg.Pool, clients: number): Promise<pg.PoolClient[]> {
  const connections = await Promise.all(Array.from({ length: clients }, () => pool.connect()));
  await Promise.all(connections.map((connection) => connection.query("SELECT 1")));
  return connections;
}

export interface ClosedLoopSpec {
  clients: number;
  /** Stop after this many operations in total ... */
  totalOperations?: number;
  /** ... or after this many seconds. */
  seconds?: number;
  nextOperation(index: number): Operation;
  onDone?(count: number): void;
}

export async function runClosedLoop(pool: pg.Pool, spec: ClosedLoopSpec): Promise<LoopResult> {
  const connections = await checkOutConnections(pool, spec.clients);
  const result: LoopResult = { overall: new LatencyRecorder(), byOperation: new Map(), seconds: 0 };
  let issued = 0;
  const start = nowMs();
  const deadline = spec.seconds === undefined ? Infinity : start + spec.seconds * 1000;
  const limit = spec.totalOperations ?? Infinity;
  try {
    await Promise.all(
      connections.map(async (connection) => {
        while (issued < limit && nowMs() < deadline) {
          const operation = spec.nextOperation(issued++);
          await timed(operation, connection, nowMs(), result);
          spec.onDone?.(1);
        }
      }),
    );
  } finally {
    connections.forEach((connection) => connection.release());
  }
  result.seconds = (nowMs() - start) / 1000;
  return result;
}

export interface OpenLoopSpec {
  /** Arrival rate, operations per second. */
  rate: number;
  seconds: number;
  nextOperation(index: number): Operation;
  onDone?(count: number): void;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Starts operation i at start + i / rate whether or not earlier ones finished. The pool (sized by the
 * caller) bounds the operations in flight; one waiting for a connection is still timed from its
 * scheduled start.
 */
export async function runOpenLoop(pool: pg.Pool, spec: OpenLoopSpec): Promise<LoopResult> {
  const result: LoopResult = { overall: new LatencyRecorder(), byOperation: new Map(), seconds: 0, dispatchLag: new LatencyRecorder() };
  const interval = 1000 / spec.rate;
  const total = Math.floor(spec.rate * spec.seconds);
  const inFlight: Promise<void>[] = [];
  const start = nowMs();
  for (let index = 0; index < total; index++) {
    const scheduled = start + index * interval;
    const wait = scheduled - nowMs();
    if (wait >= 1) await sleep(wait);
    const operation = spec.nextOperation(index);
    // Timers fire to the millisecond: an operation started early is timed from its actual start.
    const startedAt = Math.min(scheduled, nowMs());
    result.dispatchLag!.recordMs(Math.max(0, nowMs() - scheduled));
    inFlight.push(timed(operation, pool, startedAt, result).then(() => spec.onDone?.(1)));
  }
  await Promise.all(inFlight);
  result.seconds = (nowMs() - start) / 1000;
  return result;
}

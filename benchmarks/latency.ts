// Latency recording with an HDR histogram: fixed memory, 3 significant digits at any scale, exact
// percentiles up to that precision. Values are recorded in microseconds and reported in milliseconds.
import * as hdr from "hdr-histogram-js";

export interface LatencySummary {
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

export interface PercentilePoint {
  percentile: number;
  latencyMs: number;
}

const toMs = (microseconds: number) => Math.round(microseconds) / 1000;

// Percentiles for the distribution chart: evenly spaced in "nines" (0, 90, 99, 99.9, 99.99), as
// HdrHistogram's own plots are, so the tail gets as much room as the median.
const CHART_PERCENTILES = [
  ...Array.from({ length: 41 }, (_, step) => Number((100 * (1 - Math.pow(10, -step / 10))).toFixed(4))),
  100,
];

export class LatencyRecorder {
  private readonly histogram = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000_000, // one hour, in microseconds
    numberOfSignificantValueDigits: 3,
    useWebAssembly: false,
  });
  errors = 0;
  firstError: string | undefined;

  recordMs(milliseconds: number): void {
    this.histogram.recordValue(Math.max(1, Math.round(milliseconds * 1000)));
  }

  recordError(error: unknown): void {
    this.errors++;
    this.firstError ??= error instanceof Error ? error.message : String(error);
  }

  get count(): number {
    return this.histogram.totalCount;
  }

  /** Successful operations divided by all; 0 when nothing ran. */
  successRate(): number {
    const total = this.count + this.errors;
    return total === 0 ? 0 : this.count / total;
  }

  summary(): LatencySummary {
    if (this.count === 0) return { p50: 0, p95: 0, p99: 0, max: 0, mean: 0 };
    return {
      p50: toMs(this.histogram.getValueAtPercentile(50)),
      p95: toMs(this.histogram.getValueAtPercentile(95)),
      p99: toMs(this.histogram.getValueAtPercentile(99)),
      max: toMs(this.histogram.maxValue),
      mean: toMs(this.histogram.mean),
    };
  }

  /** The latency distribution as points for a chart (only percentiles the sample can support). */
  percentileCurve(): PercentilePoint[] {
    if (this.count === 0) return [];
    // With n samples, percentiles beyond 1 - 1/n are all the maximum: stop there.
    const resolvable = 100 * (1 - 1 / this.count);
    return CHART_PERCENTILES.filter((p) => p <= resolvable || p === 100).map((percentile) => ({
      percentile,
      latencyMs: toMs(percentile === 100 ? this.histogram.maxValue : this.histogram.getValueAtPercentile(percentile)),
    }));
  }

  /** Adds another recorder's samples (per-client recorders merged after a run). */
  add(other: LatencyRecorder): void {
    this.histogram.add(other.histogram);
    this.errors += other.errors;
    this.firstError ??= other.firstError;
  }
}

/** Milliseconds since an arbitrary origin, sub-millisecond precise. */
export function nowMs(): number {
  return performance.now();
}

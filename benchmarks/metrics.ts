// The benchmark's own Prometheus metrics (names and buckets from monitoring/metrics.ts, which the
// vector-search alerts and panels read), served on /metrics while a run goes on.
import { createServer, type Server } from "node:http";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { BENCHMARK_METRICS, SEARCH_DURATION_BUCKETS } from "../monitoring/metrics.ts";

export class SearchMetrics {
  readonly registry = new Registry();
  private readonly duration = new Histogram({
    name: BENCHMARK_METRICS.searchDuration,
    help: "Vector search round trip as the benchmark client sees it, seconds",
    labelNames: ["kind"],
    buckets: SEARCH_DURATION_BUCKETS,
    registers: [this.registry],
  });
  private readonly searches = new Counter({ name: BENCHMARK_METRICS.searches, help: "Vector searches sent", labelNames: ["kind"], registers: [this.registry] });
  private readonly errors = new Counter({ name: BENCHMARK_METRICS.searchErrors, help: "Vector searches that failed", labelNames: ["kind"], registers: [this.registry] });
  private readonly recall = new Gauge({ name: BENCHMARK_METRICS.recall, help: "recall@k of the latest measured scenario, 0..1", registers: [this.registry] });

  /** Runs one search, counting it, its failure and its duration. */
  async observe<T>(kind: string, run: () => Promise<T>): Promise<T> {
    const end = this.duration.startTimer({ kind });
    this.searches.inc({ kind });
    // A labelled counter exists only once incremented: start the error count at 0 so error-rate
    // queries see 0 errors rather than no data.
    this.errors.inc({ kind }, 0);
    try {
      return await run();
    } catch (error) {
      this.errors.inc({ kind });
      throw error;
    } finally {
      end();
    }
  }

  setRecall(value: number): void {
    this.recall.set(value);
  }

  /** Serves /metrics on host:port until the returned server is closed. */
  serve(listen: string): Promise<Server> {
    const [host, port] = listen.split(":");
    const server = createServer(async (request, response) => {
      if (request.url !== "/metrics") {
        response.writeHead(404).end();
        return;
      }
      response.writeHead(200, { "content-type": this.registry.contentType }).end(await this.registry.metrics());
    });
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(Number(port), host, () => resolve(server));
    });
  }
}

// report.json: its shape, validation against report.schema.json (before anything is written) and writing.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Ajv } from "ajv";
import type { BenchmarkMode } from "../components/spec.ts";
import type { BaselineSection } from "./baseline.ts";
import type { Environment } from "./environment.ts";
import { renderHtmlReport } from "./report-html.ts";
import type { ScenarioResult } from "./scenario-result.ts";
import type { LoadGeneratorFigure } from "./scenarios/load-generator.ts";
import type { PlanSummary } from "./search-sql.ts";
import type { Verdict } from "./targets.ts";

export interface DatasetDescription {
  rows: number;
  dimensions: number;
  namespaces: number;
  clusters: number;
  seed: number;
  distributed: boolean;
  shardCount: number | null;
  hnsw: { accessMethod: string; m: number; efConstruction: number; efSearch: string | null };
  loadSeconds: number;
  indexBuildSeconds: number;
}

export interface BenchmarkReport {
  schemaVersion: 1;
  tool: "dpc-bench";
  mode: BenchmarkMode;
  startedAt: string;
  finishedAt: string;
  durationSeconds: number;
  /** The URL with its password removed. */
  url: string;
  environment: Environment;
  dataset: DatasetDescription;
  plans: { singleShard: PlanSummary; crossShard: PlanSummary };
  scenarios: ScenarioResult[];
  loadGenerator: LoadGeneratorFigure;
  notes: string[];
  /** The same data and queries on a plain PostgreSQL node (--baseline-url), figure by figure; null without one. */
  baseline?: BaselineSection | null;
  verdict: Verdict;
}

export const REPORT_SCHEMA_PATH = new URL("./report.schema.json", import.meta.url);

let validator: ReturnType<Ajv["compile"]> | undefined;

/** Problems with a report against the JSON schema; empty when it is valid. */
export function reportSchemaErrors(report: unknown): string[] {
  if (!validator) {
    const schema = JSON.parse(readFileSync(REPORT_SCHEMA_PATH, "utf8"));
    validator = new Ajv({ allErrors: true, strict: true }).compile(schema);
  }
  if (validator(report)) return [];
  return (validator.errors ?? []).map((error) => `${error.instancePath || "/"} ${error.message}`);
}

export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(unparseable url)";
  }
}

/** Validates, then writes report.json and report.html; returns their paths. */
export function writeReport(report: BenchmarkReport, outDir: string): { json: string; html: string } {
  // JSON.stringify turns NaN into null: validate exactly what will be on disk.
  const onDisk = JSON.parse(JSON.stringify(report));
  const errors = reportSchemaErrors(onDisk);
  if (errors.length > 0) throw new Error(`report does not match report.schema.json:\n  ${errors.join("\n  ")}`);
  mkdirSync(outDir, { recursive: true });
  const json = join(outDir, "report.json");
  const html = join(outDir, "report.html");
  writeFileSync(json, JSON.stringify(onDisk, null, 2) + "\n");
  writeFileSync(html, renderHtmlReport(onDisk));
  return { json, html };
}

// The SQL names that differ between the two vector extensions. pgvector and RuVector both install
// an HNSW access method, under a name that has changed across RuVector versions, so the actual name
// is looked up in pg_am at apply time (see accessMethodCandidates) rather than assumed.
import type { VectorExtension } from "../components/spec.ts";

export interface VectorDialect {
  /** Name given to CREATE EXTENSION. */
  extensionName: string;
  /** The other extension, which must never be installed in the same database. */
  conflictingExtensionName: string;
  /** Column type for an n-dimensional embedding. */
  columnType(dimensions: number): string;
  /** Type a text literal such as '[1,2,3]' is cast to in queries. */
  castType: string;
  /** HNSW operator class for cosine distance. */
  cosineOpclass: string;
  /** HNSW access method names, preferred first (RuVector renamed `hnsw` to `ruhnsw`). */
  accessMethodCandidates: string[];
  /** The setting that sizes the HNSW search candidate list. */
  efSearchSetting: string;
  /** Extra database-level settings for vector search. */
  extraSettings: Record<string, string>;
  /** A boolean SQL expression: the vector in `column` is not all zeros. */
  nonZero(column: string): string;
}

const PGVECTOR: VectorDialect = {
  extensionName: "vector",
  conflictingExtensionName: "ruvector",
  columnType: (dimensions) => `vector(${dimensions})`,
  castType: "vector",
  cosineOpclass: "vector_cosine_ops",
  accessMethodCandidates: ["hnsw"],
  efSearchSetting: "hnsw.ef_search",
  // pgvector 0.8: keep scanning the graph until LIMIT rows pass the WHERE clause. Without it a
  // namespace filter is applied after ef_search candidates were taken and returns too few rows.
  extraSettings: { "hnsw.iterative_scan": "strict_order" },
  nonZero: (column) => `vector_norm(${column}) > 0`,
};

const RUVECTOR: VectorDialect = {
  extensionName: "ruvector",
  conflictingExtensionName: "vector",
  columnType: (dimensions) => `ruvector(${dimensions})`,
  castType: "ruvector",
  cosineOpclass: "ruvector_cosine_ops",
  accessMethodCandidates: ["ruhnsw", "hnsw"],
  efSearchSetting: "ruvector.hnsw_ef_search",
  extraSettings: {},
  // Inner product with itself: zero exactly for the zero vector, whatever the operator's sign.
  nonZero: (column) => `(${column} <#> ${column}) <> 0`,
};

export function vectorDialect(extension: VectorExtension): VectorDialect {
  return extension === "ruvector" ? RUVECTOR : PGVECTOR;
}

/** Which variant an installed extension name belongs to, if any. */
export function variantOfExtension(extensionName: string): VectorExtension | undefined {
  if (extensionName === PGVECTOR.extensionName) return "pgvector";
  if (extensionName === RUVECTOR.extensionName) return "ruvector";
  return undefined;
}

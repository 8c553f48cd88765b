// A seeded, clustered synthetic data set: the same seed always gives the same vectors, so runs are
// comparable. Clustered (points around a few centres) like real embeddings, so an approximate
// index has real neighbourhoods to find, unlike uniform noise where every point is equally far.

/** mulberry32: a small, fast, deterministic PRNG; returns floats in [0, 1). */
export function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal sample (Box-Muller). */
export function gaussian(random: () => number): number {
  const u = 1 - random(); // (0, 1]: log(0) would be -Infinity
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

function normalize(values: Float32Array): Float32Array {
  let norm = 0;
  for (const value of values) norm += value * value;
  norm = Math.sqrt(norm) || 1;
  for (let i = 0; i < values.length; i++) values[i] /= norm;
  return values;
}

export interface DatasetOptions {
  rows: number;
  dimensions: number;
  namespaces: number;
  clusters: number;
  seed: number;
}

export interface DatasetRow {
  id: number;
  namespace: string;
  embedding: Float32Array;
}

export function namespaceName(index: number): string {
  return `bench-ns-${String(index).padStart(3, "0")}`;
}

/** Generates vectors: each picks a cluster centre and adds noise, then is normalised (cosine). */
export class ClusteredVectors {
  private readonly random: () => number;
  private readonly centres: Float32Array[];

  constructor(
    readonly options: DatasetOptions,
    stream: number,
  ) {
    // Centres depend only on the seed; the stream number separates rows, queries and inserts.
    const centreRandom = createRandom(options.seed);
    this.centres = Array.from({ length: options.clusters }, () =>
      normalize(Float32Array.from({ length: options.dimensions }, () => gaussian(centreRandom))),
    );
    this.random = createRandom(options.seed * 7919 + stream);
  }

  /** `noise` is the noise vector's expected length against a unit centre: clusters stay distinct,
   *  yet points inside one are spread enough that finding the true nearest ten is not trivial. */
  nextVector(noise = 0.6): Float32Array {
    const centre = this.centres[Math.floor(this.random() * this.centres.length)];
    const sigma = noise / Math.sqrt(this.options.dimensions);
    const vector = new Float32Array(this.options.dimensions);
    for (let i = 0; i < vector.length; i++) vector[i] = centre[i] + gaussian(this.random) * sigma;
    return normalize(vector);
  }

  nextNamespace(): string {
    return namespaceName(Math.floor(this.random() * this.options.namespaces));
  }

  /** Picks `count` distinct namespaces. */
  nextNamespaces(count: number): string[] {
    const picked = new Set<string>();
    const wanted = Math.min(count, this.options.namespaces);
    while (picked.size < wanted) picked.add(this.nextNamespace());
    return [...picked].sort();
  }

  nextRow(id: number): DatasetRow {
    return { id, namespace: this.nextNamespace(), embedding: this.nextVector() };
  }
}

/** Streams of the generator, so that adding queries never changes the stored rows. */
export const STREAMS = { rows: 1, queries: 2, inserts: 3, mixed: 4 } as const;

/** The text form pgvector and RuVector both accept: [0.1,0.2,...]. */
export function vectorLiteral(vector: Float32Array): string {
  let text = "[";
  for (let i = 0; i < vector.length; i++) {
    if (i > 0) text += ",";
    text += vector[i].toFixed(6);
  }
  return text + "]";
}

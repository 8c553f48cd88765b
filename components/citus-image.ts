// Which PostgreSQL majors an upstream Citus image (`citusdata/citus`) can run with Citus, read from
// its reference. Pure: spec validation uses it before anything is built.

/**
 * Citus releases (major.minor): the PostgreSQL majors each supports, and the major of its plain
 * `X.Y.Z` image (built on the newest of them). Other majors have images tagged `X.Y.Z-pg<major>`.
 * Source: Citus release notes and the citusdata/docker Dockerfiles (postgres-NN variants).
 */
export const CITUS_RELEASES: Record<string, { postgres: number[]; imageDefault: number }> = {
  "12.1": { postgres: [14, 15, 16], imageDefault: 16 },
  "13.0": { postgres: [15, 16, 17], imageDefault: 17 },
  "13.1": { postgres: [15, 16, 17], imageDefault: 17 },
  "13.2": { postgres: [15, 16, 17], imageDefault: 17 },
};

export interface CitusImage {
  /** Citus major.minor, e.g. "13.0". */
  citus: string;
  /** The PostgreSQL majors the image runs Citus on: one (its own), or none for a tag no release has. */
  postgres: number[];
  /** The Citus release's PostgreSQL majors (for the message: which images exist). */
  citusServes: number[];
}

/**
 * The Citus image behind `reference` (`[docker.io/]citusdata/citus:<X.Y[.Z]>[-pg<NN>][-alpine]`),
 * or undefined when it is not one whose PostgreSQL is known here: another repository (a custom
 * base image), a floating tag (`latest`, `pg16`), or a Citus release missing from CITUS_RELEASES.
 */
export function citusImage(reference: string): CitusImage | undefined {
  const match = /^(?:docker\.io\/)?citusdata\/citus:(\d+)\.(\d+)(?:\.\d+)?(?:-pg(\d+))?(?:-alpine)?(?:@.*)?$/.exec(reference);
  if (!match) return undefined;
  const citus = `${match[1]}.${match[2]}`;
  const release = CITUS_RELEASES[citus];
  if (!release) return undefined;
  const wanted = match[3] === undefined ? release.imageDefault : Number(match[3]);
  return { citus, postgres: release.postgres.includes(wanted) ? [wanted] : [], citusServes: release.postgres };
}

/**
 * The validation problem of running `postgresMajor` on `baseImage`, naming both values and what is
 * allowed, or undefined when the pair works (or the image is not one known here).
 */
export function citusImageProblem(postgresMajor: number, baseImage: string): string | undefined {
  const image = citusImage(baseImage);
  if (!image || image.postgres.includes(postgresMajor)) return undefined;
  const serves = image.citusServes.join(", ");
  let allowed: string;
  if (image.postgres.length === 0) allowed = `none: Citus ${image.citus} has no image for that tag's PostgreSQL (it serves ${serves})`;
  else if (image.citusServes.includes(postgresMajor)) allowed = `${image.postgres[0]}, the PostgreSQL of that image (for PostgreSQL ${postgresMajor} use ${citusImageFor(baseImage, postgresMajor)})`;
  else allowed = `${image.postgres[0]}, the PostgreSQL of that image (Citus ${image.citus} serves PostgreSQL ${serves} only)`;
  return `postgresMajor: got ${postgresMajor} with databaseBaseImage "${baseImage}"; allowed: ${allowed}`;
}

/**
 * The same Citus release's image for `postgresMajor` (`citusdata/citus:13.0.3` + 15 ->
 * `citusdata/citus:13.0.3-pg15`); any other reference, or a major the release does not serve, unchanged.
 */
export function citusImageFor(reference: string, postgresMajor: number): string {
  const image = citusImage(reference);
  if (!image || !image.citusServes.includes(postgresMajor) || image.postgres.includes(postgresMajor)) return reference;
  const release = CITUS_RELEASES[image.citus];
  const suffix = postgresMajor === release.imageDefault ? "" : `-pg${postgresMajor}`;
  return reference.replace(/^([^:]+:[^-@]+)(?:-pg\d+)?/, `$1${suffix}`);
}

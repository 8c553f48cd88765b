// What `pulumi up` loads at deploy time must install with `npm ci --omit=dev`: every package the
// program and its components import (and tsx, which Pulumi.yaml's nodeargs and the dynamic providers
// load) is a runtime dependency; `engines.node` covers exactly what the tools need.
import test from "ava";
import { readFileSync, readdirSync } from "node:fs";
import { builtinModules, createRequire } from "node:module";
import { join } from "node:path";

const root = new URL("../../", import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const semver = createRequire(import.meta.url)("semver");

/** index.ts and every components/ file (what Pulumi runs), without tests. */
function programFiles(dir = join(root, "components")): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? programFiles(join(dir, entry.name)) : entry.name.endsWith(".ts") ? [join(dir, entry.name)] : [],
  );
}

/** The package a bare specifier names ("@scope/name/sub" -> "@scope/name"); undefined for relative and built-in ones. */
function packageOf(specifier: string): string | undefined {
  if (specifier.startsWith(".") || specifier.startsWith("node:") || builtinModules.includes(specifier)) return undefined;
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
}

test("every package the program imports or resolves at deploy time is a runtime dependency", (t) => {
  const used = new Set<string>();
  for (const file of [join(root, "index.ts"), ...programFiles()]) {
    const source = readFileSync(file, "utf8");
    for (const match of source.matchAll(/(?:from\s+|import\(\s*|import\.meta\.resolve\(\s*)["']([^"']+)["']/g)) {
      const name = packageOf(match[1]);
      if (name) used.add(name);
    }
  }
  // Pulumi.yaml runs the program with --import=tsx; the dynamic providers load tsx/esm/api.
  t.true(used.has("tsx"));
  for (const name of used) t.truthy(pkg.dependencies[name], `${name} is imported by the program but is not in dependencies`);
  t.is(pkg.devDependencies.tsx, undefined);
});

test("engines.node: what @pulumi/pulumi and the test runner (ava) accept, and this Node", (t) => {
  const range = pkg.engines.node as string;
  const requirements = ["@pulumi/pulumi", "ava", "tsx"].map((name) => JSON.parse(readFileSync(join(root, "node_modules", name, "package.json"), "utf8")).engines.node as string);
  for (const needed of requirements) t.true(semver.subset(range, needed), `${range} allows versions outside ${needed}`);
  t.true(semver.satisfies(process.version, range), `${process.version} outside ${range}`);
  // import.meta.resolve (components/schema.ts) is synchronous and unflagged from Node 20.6.
  t.false(semver.intersects(range, "<20.6"));
});

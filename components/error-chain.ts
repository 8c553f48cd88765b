// An error and the errors it was caused by: our wrappers (applyMigrations, ScalingError) keep the
// server's error (with its SQLSTATE `code`) as `cause`, so a check of the code walks the chain.

/** `error`, then its `cause`, then that one's, at most `depth` deep (a cycle cannot loop). */
export function errorChain(error: unknown, depth = 5): unknown[] {
  const chain: unknown[] = [];
  for (let current = error; current && chain.length < depth; current = (current as { cause?: unknown }).cause) chain.push(current);
  return chain;
}

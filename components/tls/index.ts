// The cluster's certificates: which (plan.ts), issuing them (issue.ts), their shapes (types.ts).
export * from "./plan.ts";
export * from "./issue.ts";
export * from "./types.ts";

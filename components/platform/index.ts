// Chooses the platform named in the stack config. Only this folder imports a provider package.
import type * as pulumi from "@pulumi/pulumi";
import type { ClusterConfig } from "../spec.ts";
import { DockerPlatform } from "./docker.ts";
import { KubernetesPlatform } from "./kubernetes.ts";
import type { Platform } from "./types.ts";

export type * from "./types.ts";

const IMPLEMENTED: readonly string[] = ["docker", "kubernetes"];

/**
 * Throws when the configured platform has no implementation. Called before any resource is
 * registered, like the config validation itself (which already admits only these today).
 */
export function checkPlatformImplemented(config: ClusterConfig): void {
  if (!IMPLEMENTED.includes(config.platform)) {
    throw new Error(`platform: got "${config.platform}"; allowed: ${IMPLEMENTED.join(", ")}`);
  }
}

/**
 * Creates the platform's shared resources under `parent`: docker, the network and the database
 * image; kubernetes, the namespace.
 */
export function createPlatform(config: ClusterConfig, parent: pulumi.Resource): Platform {
  checkPlatformImplemented(config);
  return config.platform === "kubernetes" ? new KubernetesPlatform(config, parent) : new DockerPlatform(config, parent);
}

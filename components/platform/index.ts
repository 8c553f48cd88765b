// Chooses the platform named in the stack config. Only this folder imports a provider package.
import type * as pulumi from "@pulumi/pulumi";
import type { ClusterConfig } from "../spec.ts";
import { DockerPlatform } from "./docker.ts";
import type { Platform } from "./types.ts";

export type * from "./types.ts";

/**
 * Throws when the configured platform has no implementation yet. Called before any resource is
 * registered, like the config validation itself.
 */
export function checkPlatformImplemented(config: ClusterConfig): void {
  if (config.platform === "kubernetes") {
    throw new Error(`platform: got "kubernetes"; kubernetes platform: not implemented yet (use "docker")`);
  }
}

/** Creates the platform's shared resources (docker: the network and the database image) under `parent`. */
export function createPlatform(config: ClusterConfig, parent: pulumi.Resource): Platform {
  checkPlatformImplemented(config);
  return new DockerPlatform(config, parent);
}

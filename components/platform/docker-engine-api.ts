// The one read the rolling replacements make of the Docker engine: a container's labels, whether it
// runs and is healthy, and its address, by `GET /containers/{name}/json` (Docker Engine API, "ContainerInspect")
// over the engine's unix socket. No Pulumi import.
import http from "node:http";

/** What the rolling replacement reads of a container. */
export interface InspectedContainer {
  labels: Record<string, string>;
  running: boolean;
  /** Its address on its first network with one (the Docker host reaches its bridge networks). */
  ipAddress?: string;
  /** Whether its health check passes now (State.Health.Status "healthy"); false without a health check. */
  healthy: boolean;
}

/**
 * The unix socket of the engine the provider talks to: the provider's `docker:host` config, else
 * DOCKER_HOST, else Docker's default. undefined for an engine reached otherwise (tcp://, ssh://):
 * its bridge addresses are not reachable from here either (README, "Rolling changes").
 */
export function dockerSocketPath(providerHost: string | undefined, env: Record<string, string | undefined> = process.env): string | undefined {
  const host = providerHost ?? env.DOCKER_HOST;
  if (!host) return "/var/run/docker.sock";
  return host.startsWith("unix://") ? host.slice("unix://".length) : undefined;
}

/** The container named `name`, or undefined when the engine has none of that name (HTTP 404). Throws when the engine does not answer. */
export function inspectContainer(socketPath: string, name: string, timeoutMs = 5000): Promise<InspectedContainer | undefined> {
  return new Promise((resolve, reject) => {
    const request = http.request({ socketPath, path: `/containers/${encodeURIComponent(name)}/json`, method: "GET", timeout: timeoutMs }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8");
        if (response.statusCode === 404) return resolve(undefined);
        if (response.statusCode !== 200) return reject(new Error(`docker engine: GET /containers/${name}/json: HTTP ${response.statusCode} ${body.slice(0, 200)}`));
        try {
          const info = JSON.parse(body) as {
            Config?: { Labels?: Record<string, string> | null };
            State?: { Running?: boolean; Health?: { Status?: string } };
            NetworkSettings?: { Networks?: Record<string, { IPAddress?: string }> };
          };
          const ipAddress = Object.values(info.NetworkSettings?.Networks ?? {}).map((n) => n.IPAddress).find((ip) => ip);
          resolve({ labels: info.Config?.Labels ?? {}, running: info.State?.Running === true, healthy: info.State?.Health?.Status === "healthy", ...(ipAddress ? { ipAddress } : {}) });
        } catch (error) {
          reject(error);
        }
      });
    });
    request.on("timeout", () => request.destroy(new Error(`docker engine at ${socketPath}: no answer within ${timeoutMs} ms`)));
    request.on("error", reject);
    request.end();
  });
}

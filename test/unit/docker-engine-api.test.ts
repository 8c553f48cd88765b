// The rolling replacement's one read of the Docker engine (components/platform/docker-engine-api.ts):
// which socket, and GET /containers/{name}/json answered by a stand-in engine on a unix socket.
import test from "ava";
import http from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dockerSocketPath, inspectContainer } from "../../components/platform/docker-engine-api.ts";

test("dockerSocketPath: the provider's docker:host, else DOCKER_HOST, else Docker's default; none for an engine not on a unix socket", (t) => {
  t.is(dockerSocketPath(undefined, {}), "/var/run/docker.sock");
  t.is(dockerSocketPath(undefined, { DOCKER_HOST: "unix:///run/dpc-docker.sock" }), "/run/dpc-docker.sock");
  t.is(dockerSocketPath("unix:///var/run/other.sock", { DOCKER_HOST: "unix:///run/dpc-docker.sock" }), "/var/run/other.sock");
  t.is(dockerSocketPath(undefined, { DOCKER_HOST: "tcp://10.0.0.5:2376" }), undefined);
  t.is(dockerSocketPath("ssh://user@host", {}), undefined);
});

test("inspectContainer: labels, running, health and the address of an existing container; undefined for a missing one; an engine error thrown", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "dpc-engine-"));
  const socketPath = join(dir, "docker.sock");
  const paths: string[] = [];
  const server = http.createServer((request, response) => {
    paths.push(`${request.method} ${request.url}`);
    if (request.url === "/containers/dpc-coordinator-0/json") {
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify({ Config: { Labels: { "dpc.inputs": "abc", "dpc.group": "dpc-coordinator" } }, State: { Running: true, Health: { Status: "healthy" } }, NetworkSettings: { Networks: { "dpc-network": { IPAddress: "172.28.0.5" } } } }));
    } else if (request.url === "/containers/dpc-etcd-1/json") {
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify({ Config: { Labels: null }, State: { Running: true, Health: { Status: "starting" } }, NetworkSettings: { Networks: {} } }));
    } else if (request.url === "/containers/broken/json") {
      response.writeHead(500);
      response.end("engine trouble");
    } else {
      response.writeHead(404);
      response.end('{"message":"No such container"}');
    }
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  try {
    t.deepEqual(await inspectContainer(socketPath, "dpc-coordinator-0"), { labels: { "dpc.inputs": "abc", "dpc.group": "dpc-coordinator" }, running: true, healthy: true, ipAddress: "172.28.0.5" });
    // Running, its health check not passed yet; no labels, no address.
    t.deepEqual(await inspectContainer(socketPath, "dpc-etcd-1"), { labels: {}, running: true, healthy: false });
    t.is(await inspectContainer(socketPath, "dpc-worker1-0"), undefined);
    await t.throwsAsync(inspectContainer(socketPath, "broken"), { message: /HTTP 500 engine trouble/ });
    t.deepEqual(paths, ["GET /containers/dpc-coordinator-0/json", "GET /containers/dpc-etcd-1/json", "GET /containers/dpc-worker1-0/json", "GET /containers/broken/json"]);
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
  await t.throwsAsync(inspectContainer(join(dir, "none.sock"), "x"), { code: "ENOENT" });
});

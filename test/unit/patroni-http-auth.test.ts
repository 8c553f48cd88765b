// Patroni's REST credentials during a password rotation (components/rollout/patroni-http.ts): a
// member not yet re-created still checks the previous REST password, so the rollout's target tries
// each "user:password" in turn while the member answers 401. Against a local HTTP server.
import test from "ava";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { patroniHttpTarget } from "../../components/rollout/patroni-http.ts";

const basic = (auth: string) => `Basic ${Buffer.from(auth).toString("base64")}`;

test("a switchover is sent with the current REST password first, then the previous one on 401; a refusal of both is reported", async (t) => {
  const seen: string[] = [];
  let accepted = "patroni:previous";
  const server = http.createServer((request, response) => {
    seen.push(`${request.method} ${request.url} ${request.headers.authorization === basic("patroni:current") ? "current" : request.headers.authorization === basic("patroni:previous") ? "previous" : "other"}`);
    request.resume();
    request.on("end", () => {
      const ok = request.headers.authorization === basic(accepted);
      response.writeHead(ok ? 200 : 401, { "content-type": "text/plain" });
      response.end(ok ? "Successfully switched over" : "no auth header received");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const { port } = server.address() as AddressInfo;
    const target = patroniHttpTarget({
      groups: [{ group: 1, members: [{ name: "w-0", restUrl: `http://127.0.0.1:${port}` }] }],
      restAuth: ["patroni:current", "patroni:previous"],
    });
    await target.switchover(1, "w-0", "w-1");
    t.deepEqual(seen, ["POST /switchover current", "POST /switchover previous"]);
    seen.length = 0;
    accepted = "patroni:current";
    await target.switchover(1, "w-0", "w-1");
    t.deepEqual(seen, ["POST /switchover current"], "the current password alone once it is accepted");
    accepted = "patroni:neither";
    await t.throwsAsync(target.switchover(1, "w-0", "w-1"), { message: /HTTP 401/ });
  } finally {
    server.close();
  }
});

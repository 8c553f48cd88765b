// HAProxy's stats page as CSV (`stats uri`, `/;csv`): the one reader of it, for the rollout's
// routing checks, the local runner and the tests.

/**
 * Each server of `backend` with its status ("UP", "UP 1/2", "DOWN", "DOWN 1/2", "MAINT", ...), from
 * HAProxy's stats CSV at `statsCsvUrl` (http://host:port/;csv); the FRONTEND and BACKEND rows left
 * out. Columns are found by their header names (pxname, svname, status).
 * @throws the fetch's error, or a timeout after `timeoutMs`.
 */
export async function haproxyServerStates(statsCsvUrl: string, backend: string, timeoutMs: number): Promise<Map<string, string>> {
  const csv = await (await fetch(statsCsvUrl, { signal: AbortSignal.timeout(timeoutMs) })).text();
  const [header, ...rows] = csv.split("\n").filter((line) => line.length > 0);
  const columns = header.replace(/^# /, "").split(",");
  const [proxy, server, status] = ["pxname", "svname", "status"].map((name) => columns.indexOf(name));
  const servers = rows.map((row) => row.split(",")).filter((cells) => cells[proxy] === backend && !["FRONTEND", "BACKEND"].includes(cells[server]));
  return new Map(servers.map((cells) => [cells[server], cells[status]]));
}

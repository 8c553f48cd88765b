// HTTP(S) requests to Patroni's and etcd's APIs (the local runner, the tests, the rollout). Node's fetch
// cannot take a CA per request, so this uses node:http(s): each origin of a local cluster is
// registered with the cluster CA (and, for etcd, the operator's client certificate) by LocalCluster.
import http from "node:http";
import https from "node:https";
import { checkServerIdentity } from "node:tls";

/** What a client trusts and presents: PEM texts. */
export interface TlsClientIdentity {
  ca: string;
  cert?: string;
  key?: string;
  /**
   * The name the server's certificate must carry when the URL's host is not one of its names (the
   * Docker platform dials a container's IP address; its certificate names the container's hostname).
   * Sent as SNI and checked instead of the URL's host; absent: the URL's host is checked.
   */
  serverName?: string;
}

const identities = new Map<string, TlsClientIdentity>();
let fallback: TlsClientIdentity | undefined;

/** Trust `identity.ca` (and present its client certificate) for requests to `origin` (https://host:port). */
export function trustOrigin(origin: string, identity: TlsClientIdentity): void {
  identities.set(new URL(origin).origin, identity);
}

/**
 * Trust `identity.ca` (and present its client certificate) for every https origin with none of its
 * own: a local cluster's nodes, including those a scale-out adds later, share one CA.
 */
export function trustByDefault(identity: TlsClientIdentity): void {
  fallback = identity;
}

export interface HttpAnswer {
  status: number;
  text: string;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  timeoutMs?: number;
  /** Overrides the registered identity (the attack tests: another CA, no client certificate). */
  identity?: TlsClientIdentity | null;
}

/**
 * One request. https URLs verify the server against the CA registered for their origin (or
 * `options.identity`, else the default one), name included; an https origin with none registered
 * is refused by Node's default trust store, as it should be. Rejects on network errors and timeouts, not on HTTP statuses.
 */
export function request(url: string, options: RequestOptions = {}): Promise<HttpAnswer> {
  const target = new URL(url);
  const identity = options.identity === undefined ? identities.get(target.origin) ?? fallback : options.identity ?? undefined;
  const secure = target.protocol === "https:";
  return new Promise((resolvePromise, reject) => {
    const req = (secure ? https : http).request(
      target,
      {
        method: options.method ?? "GET",
        // A length, not chunked encoding: Patroni's REST API reads the body by Content-Length.
        headers: options.body === undefined ? options.headers : { ...options.headers, "content-length": String(Buffer.byteLength(options.body)) },
        timeout: options.timeoutMs ?? 1500,
        ...(secure && identity ? { ca: identity.ca, cert: identity.cert, key: identity.key } : {}),
        ...(secure && identity?.serverName ? serverNameCheck(identity.serverName) : {}),
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => resolvePromise({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
        response.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${url}: no answer within ${options.timeoutMs ?? 1500} ms`)));
    req.on("error", reject);
    if (options.body !== undefined) req.write(options.body);
    req.end();
  });
}

/** TLS options that verify the server's certificate against `name` instead of the dialled host. */
function serverNameCheck(name: string): Pick<https.RequestOptions, "servername" | "checkServerIdentity"> {
  return { servername: name, checkServerIdentity: (_host, cert) => checkServerIdentity(name, cert) };
}

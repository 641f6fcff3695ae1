/**
 * Stand-ins on loopback for the egress tests: an HTTPS (or HTTP) origin
 * that answers with what it received, a CONNECT-capable upstream proxy that
 * records what it was asked (the corporate proxy in front of the internet),
 * and curl through the egress proxy. Nothing leaves the machine: the fake
 * upstream proxy "resolves" names from its own table of loopback ports.
 */
import { execFile } from "node:child_process";
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { connect as netConnect, createServer as createNetServer, type AddressInfo, type Socket } from "node:net";

export const LOOP = "127.0.0.1";

export interface Seen {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface Origin {
  port: number;
  seen: Seen[];
  close(): Promise<void>;
}

/** Answers every request with JSON: method, url, Host. `tls` absent: plain HTTP. */
export async function fakeOrigin(tls?: { key: string; cert: string }): Promise<Origin> {
  const seen: Seen[] = [];
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    req.on("end", () => {
      seen.push({ method: req.method ?? "", url: req.url ?? "", headers: { ...req.headers } });
      const body = JSON.stringify({ method: req.method, url: req.url, host: req.headers.host });
      res.writeHead(200, { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) });
      res.end(body);
    });
  };
  const server = (tls ? createHttpsServer({ key: tls.key, cert: tls.cert }, handler) : createHttpServer(handler)) as unknown as Server;
  return { ...(await listen(server)), seen };
}

export interface UpstreamRecord {
  /** The request line as received: `CONNECT host:port HTTP/1.1`, `GET http://host/path HTTP/1.1`. */
  line: string;
  proxyAuthorization: string | undefined;
}

export interface FakeUpstreamProxy {
  port: number;
  seen: UpstreamRecord[];
  /** Answer every CONNECT with this status instead of opening the tunnel. */
  refuseWith: number | undefined;
  close(): Promise<void>;
}

/**
 * A tiny proxy: CONNECT host:port opens a tunnel to `routes[host:port]`
 * (a loopback port), an absolute-form request is passed on to the route of
 * its host:port as it came (Node's HTTP server takes absolute-form targets).
 * Everything asked is recorded, routed or not.
 */
export async function fakeUpstreamProxy(routes: ReadonlyMap<string, number>): Promise<FakeUpstreamProxy> {
  const seen: UpstreamRecord[] = [];
  const state = { refuseWith: undefined as number | undefined };
  const server = createNetServer((client) => {
    client.on("error", () => {});
    let buf = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      client.off("data", onData);
      const lines = buf.subarray(0, end).toString("latin1").split("\r\n");
      const line = lines[0] ?? "";
      const auth = lines.find((l) => /^proxy-authorization:/i.test(l));
      seen.push({ line, proxyAuthorization: auth?.slice(auth.indexOf(":") + 1).trim() });
      const [method, target = ""] = line.split(" ");
      const key = method === "CONNECT" ? target : (() => {
        const u = new URL(target);
        return `${u.hostname}:${u.port || 80}`;
      })();
      const port = routes.get(key);
      if (method === "CONNECT" && state.refuseWith !== undefined) return void client.end(`HTTP/1.1 ${state.refuseWith} No\r\nContent-Length: 0\r\n\r\n`);
      if (port === undefined) return void client.end("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
      const upstream = netConnect({ host: LOOP, port }, () => {
        if (method === "CONNECT") {
          client.write("HTTP/1.1 200 Connection established\r\n\r\n");
          if (buf.length > end + 4) upstream.write(buf.subarray(end + 4));
        } else upstream.write(buf);
        client.pipe(upstream);
        upstream.pipe(client);
      });
      upstream.on("error", () => client.destroy());
    };
    client.on("data", onData);
  });
  const opened = await listen(server as unknown as Server);
  return {
    port: opened.port,
    seen,
    get refuseWith() {
      return state.refuseWith;
    },
    set refuseWith(v) {
      state.refuseWith = v;
    },
    close: opened.close,
  };
}

async function listen(server: Server): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  server.on("connection", (s: Socket) => (sockets.add(s), s.on("close", () => sockets.delete(s))));
  await new Promise<void>((r) => server.listen(0, LOOP, r));
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** curl through the egress proxy at `proxyPort`, with nothing from the test's environment. */
export function curlVia(proxyPort: number, args: string[], home: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      "curl",
      ["-sS", "--proxy", `http://${LOOP}:${proxyPort}`, "--max-time", "20", ...args],
      { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home }, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) : 0, stdout: String(stdout), stderr: String(stderr) }),
    );
  });
}

/** Waits until `find` returns something (audit lines are written as connections end). */
export async function eventually<T>(find: () => T | undefined, what: string): Promise<T> {
  for (let i = 0; i < 250; i++) {
    const found = find();
    if (found !== undefined) return found;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

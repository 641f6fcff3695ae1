/**
 * Local servers and TLS material for the egress tests. Everything listens on
 * an address the test chooses (127.0.0.1 for unit tests, a test-only network
 * namespace for the integration test); nothing reaches beyond this machine.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { createConnection, createServer as createNetServer, type AddressInfo, type Socket } from "node:net";
import { connect as tlsConnect, type ConnectionOptions } from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TlsMaterial {
  key: string;
  cert: string;
}

/** A throw-away self-signed certificate for the given names (openssl, as in scripts/setup-engine.sh). */
export function makeCert(names: string[]): TlsMaterial {
  const dir = mkdtempSync(join(tmpdir(), "sandbox-egress-cert-"));
  try {
    const san = names.map((n) => (/^[\d.]+$/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(",");
    execFileSync(
      "openssl",
      ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", `/CN=${names[0]}`, "-addext", `subjectAltName=${san}`, "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")],
      { stdio: "ignore" },
    );
    return { key: readFileSync(join(dir, "key.pem"), "utf8"), cert: readFileSync(join(dir, "cert.pem"), "utf8") };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The exact first bytes a real TLS client sends: a ClientHello with the given SNI ("" or undefined: none). */
export function captureClientHello(servername: string | undefined): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const server = createNetServer((s) => {
      let buf = Buffer.alloc(0);
      s.on("data", (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        // Record header says how long the first record is; wait for all of it.
        if (buf.length >= 5 && buf.length >= 5 + buf.readUInt16BE(3)) {
          resolve(buf);
          s.destroy();
          server.close();
        }
      });
    });
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as AddressInfo).port;
      const opts: ConnectionOptions = { host: "127.0.0.1", port, rejectUnauthorized: false, servername: servername ?? "" };
      tlsConnect(opts).on("error", () => {});
    });
  });
}

/**
 * Routes: GET /hello → "hello <Host header>", GET /bytes/N → N bytes of 'x',
 * POST /echo → the body back. Every request is remembered in `seen`.
 */
export function handler(seen: Array<{ method: string; url: string; host: string | undefined; headers: Record<string, unknown> }>) {
  return (req: import("node:http").IncomingMessage, res: import("node:http").ServerResponse) => {
    seen.push({ method: req.method ?? "", url: req.url ?? "", host: req.headers.host, headers: { ...req.headers } });
    if (req.url === "/hello") {
      res.end(`hello ${req.headers.host}\n`);
      return;
    }
    const bytes = /^\/bytes\/(\d+)$/.exec(req.url ?? "");
    if (bytes) {
      const total = Number(bytes[1]);
      res.writeHead(200, { "content-length": String(total), "content-type": "application/octet-stream" });
      const block = Buffer.alloc(Math.min(total, 1 << 20), "x");
      let left = total;
      const pump = () => {
        while (left > 0) {
          const n = Math.min(left, block.length);
          left -= n;
          if (!res.write(n === block.length ? block : block.subarray(0, n))) {
            res.once("drain", pump);
            return;
          }
        }
        res.end();
      };
      pump();
      return;
    }
    if (req.url === "/echo") {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => res.end(Buffer.concat(chunks)));
      return;
    }
    res.statusCode = 404;
    res.end("not found\n");
  };
}

export interface TestServers {
  http: HttpServer;
  https: HttpServer;
  httpPort: number;
  httpsPort: number;
  seen: Array<{ method: string; url: string; host: string | undefined; headers: Record<string, unknown> }>;
  close(): Promise<void>;
}

export async function startServers(host: string, tls: TlsMaterial): Promise<TestServers> {
  const seen: TestServers["seen"] = [];
  const http = createHttpServer(handler(seen));
  const https = createHttpsServer({ key: tls.key, cert: tls.cert }, handler(seen)) as unknown as HttpServer;
  const listen = (s: HttpServer) => new Promise<number>((resolve) => s.listen(0, host, () => resolve((s.address() as AddressInfo).port)));
  const [httpPort, httpsPort] = await Promise.all([listen(http), listen(https)]);
  const sockets = new Set<Socket>();
  for (const s of [http, https]) s.on("connection", (c: Socket) => (sockets.add(c), c.on("close", () => sockets.delete(c))));
  return {
    http,
    https,
    httpPort,
    httpsPort,
    seen,
    close: async () => {
      for (const c of sockets) c.destroy();
      await Promise.all([new Promise((r) => http.close(r)), new Promise((r) => https.close(r))]);
    },
  };
}

/** Sends raw bytes to host:port and collects everything until the peer closes (or the time limit). */
export function rawExchange(host: string, port: number, chunks: Array<Buffer | string>, opts: { timeoutMs?: number; endAfterWrite?: boolean } = {}): Promise<Buffer> {
  return new Promise((resolve) => {
    const out: Buffer[] = [];
    const socket = createConnection({ host, port }, () => {
      for (const c of chunks) socket.write(c);
      if (opts.endAfterWrite) socket.end();
    });
    const timer = setTimeout(() => socket.destroy(), opts.timeoutMs ?? 5000);
    socket.on("data", (d: Buffer) => out.push(d));
    socket.on("error", () => {});
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(Buffer.concat(out));
    });
  });
}

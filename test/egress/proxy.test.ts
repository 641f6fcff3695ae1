import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect as netConnect, createServer as createNetServer, type AddressInfo, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseCidr } from "../../src/egress/address-policy.ts";
import { parseAllowList } from "../../src/egress/allowlist.ts";
import { AuditLog, openAuditFile, type AuditEntry } from "../../src/egress/audit.ts";
import { EgressProxy } from "../../src/egress/proxy.ts";
import { parseHostsTable, tableResolver } from "../../src/egress/resolve.ts";
import { captureClientHello, makeCert, rawExchange, startServers, type TestServers, type TlsMaterial } from "./fixtures.ts";

const LOOP = "127.0.0.1";

function allow(entries: string[]) {
  const parsed = parseAllowList(entries);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.value;
}

const resolve = tableResolver(
  parseHostsTable(`
127.0.0.1 allowed.test blocked.test loop.test
0.0.0.0 mixed.test
127.0.0.1 mixed.test
`),
);

interface Harness {
  proxy: EgressProxy;
  port: number;
  entries: AuditEntry[];
}

async function startProxy(entries: string[], opts: { auditPath?: string; helloTimeoutMs?: number } = {}): Promise<Harness> {
  const audit = new AuditLog(opts.auditPath ? openAuditFile(opts.auditPath) : undefined);
  const seen: AuditEntry[] = [];
  audit.onRecord((e) => seen.push(e));
  const proxy = new EgressProxy({ allow: allow(entries), audit, resolve, helloTimeoutMs: opts.helloTimeoutMs ?? 2000 });
  const { port } = await proxy.listen(LOOP, 0);
  return { proxy, port, entries: seen };
}

let tls: TlsMaterial;
let servers: TestServers;
let h: Harness;
let dir: string;

beforeAll(async () => {
  tls = makeCert(["allowed.test", "blocked.test"]);
  servers = await startServers(LOOP, tls);
  dir = mkdtempSync(join(tmpdir(), "sandbox-proxy-test-"));
  // 127.0.0.1 listed explicitly: the test servers live on loopback, which is otherwise refused.
  h = await startProxy(["allowed.test", "mixed.test", LOOP], { auditPath: join(dir, "audit.jsonl") });
});

afterAll(async () => {
  await h.proxy.close();
  await servers.close();
  rmSync(dir, { recursive: true, force: true });
});

async function lastEntry(harness: Harness, count: number): Promise<AuditEntry> {
  for (let i = 0; i < 100 && harness.entries.length < count; i++) await Bun.sleep(20);
  const e = harness.entries[count - 1];
  if (!e) throw new Error(`expected ${count} audit entries, got ${harness.entries.length}`);
  return e;
}

function httpVia(port: number, request: string | Array<string | Buffer>): Promise<string> {
  return rawExchange(LOOP, port, Array.isArray(request) ? request : [request], { timeoutMs: 5000 }).then((b) => b.toString("latin1"));
}

/** CONNECT, then TLS with `servername` through the tunnel, then GET /hello. */
function tunnel(port: number, target: string, servername: string | undefined): Promise<{ status: string; body?: string; error?: string }> {
  return new Promise((resolve) => {
    const raw: Socket = netConnect({ host: LOOP, port }, () => raw.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`));
    raw.on("error", () => {});
    let head = "";
    const onData = (d: Buffer) => {
      head += d.toString("latin1");
      if (!head.includes("\r\n\r\n")) return;
      raw.off("data", onData);
      const status = head.split("\r\n")[0] ?? "";
      if (!status.includes(" 200 ")) {
        resolve({ status });
        raw.destroy();
        return;
      }
      const secure = tlsConnect({ socket: raw, servername: servername ?? "", ca: tls.cert, rejectUnauthorized: false });
      let body = "";
      secure.on("secureConnect", () => secure.write(`GET /hello HTTP/1.1\r\nHost: ${target}\r\nConnection: close\r\n\r\n`));
      secure.on("data", (c: Buffer) => (body += c.toString()));
      secure.on("error", (err: Error) => resolve({ status, error: err.message, body }));
      secure.on("close", () => resolve({ status, body }));
    };
    raw.on("data", onData);
    setTimeout(() => raw.destroy(), 8000);
  });
}

describe("plain HTTP forwarding", () => {
  test("an allowed host is reached with its own Host header, and audited with byte counts", async () => {
    const before = servers.seen.length;
    const n = h.entries.length;
    const res = await httpVia(h.port, `GET http://allowed.test:${servers.httpPort}/hello HTTP/1.1\r\nHost: ignored.test\r\nProxy-Authorization: Basic c2VjcmV0\r\n\r\n`);
    expect(res.startsWith("HTTP/1.1 200")).toBe(true);
    expect(res).toContain("Connection: close");
    expect(res.endsWith(`hello allowed.test:${servers.httpPort}\n`)).toBe(true);
    const seen = servers.seen[before];
    expect(seen?.host).toBe(`allowed.test:${servers.httpPort}`);
    expect(seen?.headers["proxy-authorization"]).toBeUndefined();
    const e = await lastEntry(h, n + 1);
    expect(e).toMatchObject({ method: "GET", host: "allowed.test", port: servers.httpPort, decision: "allow", reason: "matched allowed.test", address: LOOP });
    expect(e.bytesUp).toBeGreaterThan(40);
    expect(e.bytesDown).toBeGreaterThan(res.length - 40);
  });

  test("a host not on the list gets 403 and the server sees nothing", async () => {
    const before = servers.seen.length;
    const n = h.entries.length;
    const res = await httpVia(h.port, `GET http://blocked.test:${servers.httpPort}/hello HTTP/1.1\r\nHost: blocked.test\r\n\r\n`);
    expect(res.startsWith("HTTP/1.1 403")).toBe(true);
    expect(res).toContain("not on the allow-list");
    expect(servers.seen.length).toBe(before);
    expect(await lastEntry(h, n + 1)).toMatchObject({ host: "blocked.test", decision: "deny", reason: "not on the allow-list", bytesUp: 0, bytesDown: 0 });
  });

  test("a listed name that resolves to loopback is refused unless the address is listed", async () => {
    const strict = await startProxy(["loop.test"]);
    try {
      const res = await httpVia(strict.port, `GET http://loop.test:${servers.httpPort}/hello HTTP/1.1\r\n\r\n`);
      expect(res.startsWith("HTTP/1.1 403")).toBe(true);
      const e = await lastEntry(strict, 1);
      expect(e).toMatchObject({ host: "loop.test", decision: "deny" });
      expect(e.reason).toBe("resolves to a refused address: 127.0.0.1 is a loopback address, not listed as an IP or CIDR");
      // The IPv4-mapped spelling of the same address is no way around it.
      const mapped = await httpVia(strict.port, `CONNECT [::ffff:127.0.0.1]:${servers.httpsPort} HTTP/1.1\r\n\r\n`);
      expect(mapped.startsWith("HTTP/1.1 403")).toBe(true);
    } finally {
      await strict.proxy.close();
    }
  });

  test("of several answers only the permitted ones are dialled", async () => {
    const n = h.entries.length;
    const res = await httpVia(h.port, `GET http://mixed.test:${servers.httpPort}/hello HTTP/1.1\r\n\r\n`);
    expect(res.startsWith("HTTP/1.1 200")).toBe(true);
    expect((await lastEntry(h, n + 1)).address).toBe(LOOP);
  });

  test("a chunked POST arrives whole; a request pipelined behind it never reaches the server", async () => {
    const before = servers.seen.length;
    const res = await httpVia(h.port, [
      `POST http://allowed.test:${servers.httpPort}/echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n`,
      "5\r\nhello\r\n",
      `6\r\n world\r\n0\r\n\r\nGET /hello HTTP/1.1\r\nHost: blocked.test\r\n\r\n`,
    ]);
    expect(res.startsWith("HTTP/1.1 200")).toBe(true);
    expect(res.endsWith("hello world")).toBe(true);
    await Bun.sleep(100);
    expect(servers.seen.slice(before).map((s) => s.url)).toEqual(["/echo"]);
  });

  test("ambiguous framing and origin-form requests are refused with 400", async () => {
    const both = await httpVia(h.port, `POST http://allowed.test:${servers.httpPort}/echo HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc`);
    expect(both.startsWith("HTTP/1.1 400")).toBe(true);
    const origin = await httpVia(h.port, "GET /hello HTTP/1.1\r\nHost: allowed.test\r\n\r\n");
    expect(origin.startsWith("HTTP/1.1 400")).toBe(true);
    expect(origin).toContain("send the full URL");
    const https = await httpVia(h.port, "GET https://allowed.test/ HTTP/1.1\r\n\r\n");
    expect(https).toContain("CONNECT");
  });

  test("garbage is answered 400 and still recorded", async () => {
    const n = h.entries.length;
    const res = await httpVia(h.port, "\x16\x03\x01 not http\r\n\r\n");
    expect(res.startsWith("HTTP/1.1 400")).toBe(true);
    expect(await lastEntry(h, n + 1)).toMatchObject({ method: "-", decision: "deny", reason: "malformed request: not an HTTP/1.x request line" });
  });

  test("32 MiB come through intact and are counted", async () => {
    const n = h.entries.length;
    const size = 32 * 1024 * 1024;
    const res = await rawExchange(LOOP, h.port, [`GET http://allowed.test:${servers.httpPort}/bytes/${size} HTTP/1.1\r\n\r\n`], { timeoutMs: 20_000 });
    const bodyStart = res.indexOf("\r\n\r\n") + 4;
    expect(res.length - bodyStart).toBe(size);
    expect((await lastEntry(h, n + 1)).bytesDown).toBeGreaterThanOrEqual(size);
  });
});

describe("request heads", () => {
  /** Writes `bytes` one byte per write, letting the proxy read between writes. */
  function trickle(port: number, bytes: Buffer): Promise<string> {
    return new Promise((resolve) => {
      const out: Buffer[] = [];
      const socket = netConnect({ host: LOOP, port }, async () => {
        socket.setNoDelay(true);
        for (let i = 0; i < bytes.length && !socket.destroyed; i++) {
          socket.write(bytes.subarray(i, i + 1));
          // Every few bytes, let the event loop run so the proxy reads what has arrived.
          if (i % 4 === 3) await new Promise((r) => setImmediate(r));
        }
      });
      socket.on("data", (d: Buffer) => out.push(d));
      socket.on("error", () => {});
      socket.on("close", () => resolve(Buffer.concat(out).toString("latin1")));
      setTimeout(() => socket.destroy(), 60_000);
    });
  }

  const padded = (lines: number) => `GET http://blocked.test:${servers.httpPort}/hello HTTP/1.1\r\n${"X-Pad: 0123456789abcdef0123456789abcdef0123456789\r\n".repeat(lines)}\r\n`;

  test("a 60 KB head sent a byte at a time costs work in proportion to its bytes", async () => {
    const head = Buffer.from(padded(1200));
    expect(head.length).toBeGreaterThan(60_000);
    const before = { ...h.proxy.headBytes };
    const n = h.entries.length;
    const res = await trickle(h.port, head);
    // The whole head was read and understood: the request got its (policy) answer.
    expect(res.startsWith("HTTP/1.1 403")).toBe(true);
    expect(await lastEntry(h, n + 1)).toMatchObject({ host: "blocked.test", decision: "deny", reason: "not on the allow-list" });
    const received = h.proxy.headBytes.received - before.received;
    const scanned = h.proxy.headBytes.scanned - before.scanned;
    const reads = h.proxy.headBytes.reads - before.reads;
    expect(received).toBe(head.length);
    // It did arrive in many small reads; re-examining everything so far on each read would
    // have looked at about reads × length / 2 bytes.
    expect(reads).toBeGreaterThan(1000);
    expect(scanned).toBeLessThanOrEqual(received);
  }, 60_000);

  test("a head larger than 64 KiB is answered 431, recorded, and not examined past the limit", async () => {
    const head = Buffer.from(padded(1500));
    expect(head.length).toBeGreaterThan(64 * 1024);
    const before = { ...h.proxy.headBytes };
    const n = h.entries.length;
    const res = await httpVia(h.port, head.toString("latin1"));
    expect(res.startsWith("HTTP/1.1 431 Request Header Fields Too Large")).toBe(true);
    expect(await lastEntry(h, n + 1)).toMatchObject({ method: "-", decision: "deny", reason: "malformed request: request head larger than 64 KiB" });
    expect(h.proxy.headBytes.scanned - before.scanned).toBeLessThanOrEqual(64 * 1024);
  });
});

describe("CONNECT tunnels", () => {
  test("TLS to an allowed host with a matching SNI works end to end", async () => {
    const n = h.entries.length;
    const r = await tunnel(h.port, `allowed.test:${servers.httpsPort}`, "allowed.test");
    expect(r.status).toContain("200");
    expect(r.body).toContain(`hello allowed.test:${servers.httpsPort}`);
    const e = await lastEntry(h, n + 1);
    expect(e).toMatchObject({ method: "CONNECT", host: "allowed.test", decision: "allow", sni: "allowed.test", address: LOOP });
    expect(e.bytesUp).toBeGreaterThan(500);
    expect(e.bytesDown).toBeGreaterThan(500);
  });

  test("an SNI naming another host is cut off before any byte reaches the server (no domain fronting)", async () => {
    const n = h.entries.length;
    const r = await tunnel(h.port, `allowed.test:${servers.httpsPort}`, "blocked.test");
    expect(r.body ?? "").toBe("");
    const e = await lastEntry(h, n + 1);
    expect(e).toMatchObject({ host: "allowed.test", decision: "deny", sni: "blocked.test", bytesUp: 0, bytesDown: 0 });
    expect(e.reason).toContain("names blocked.test, not allowed.test");
  });

  test("a ClientHello without SNI is refused", async () => {
    const n = h.entries.length;
    const hello = await captureClientHello(undefined);
    const out = await rawExchange(LOOP, h.port, [`CONNECT allowed.test:${servers.httpsPort} HTTP/1.1\r\n\r\n`, hello]);
    expect(out.toString("latin1")).toBe("HTTP/1.1 200 Connection established\r\n\r\n");
    expect(await lastEntry(h, n + 1)).toMatchObject({ decision: "deny", reason: "the ClientHello names no server (SNI)" });
  });

  test("a tunnel that does not start with TLS is refused", async () => {
    const n = h.entries.length;
    await rawExchange(LOOP, h.port, [`CONNECT allowed.test:${servers.httpPort} HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n`]);
    const e = await lastEntry(h, n + 1);
    expect(e.decision).toBe("deny");
    expect(e.reason).toStartWith("not TLS");
  });

  test("a tunnel that never sends anything is refused after the time limit", async () => {
    const n = h.entries.length;
    await rawExchange(LOOP, h.port, [`CONNECT allowed.test:${servers.httpsPort} HTTP/1.1\r\n\r\n`], { timeoutMs: 5000 });
    expect((await lastEntry(h, n + 1)).reason).toBe("no TLS ClientHello within the time limit");
  });

  test("a blocked CONNECT gets 403 and no tunnel", async () => {
    const out = await rawExchange(LOOP, h.port, [`CONNECT blocked.test:${servers.httpsPort} HTTP/1.1\r\n\r\n`]);
    expect(out.toString().startsWith("HTTP/1.1 403")).toBe(true);
  });

  test("the audit file holds one JSON line per connection so far", () => {
    const lines = readFileSync(join(dir, "audit.jsonl"), "utf8").trim().split("\n");
    expect(lines.length).toBe(h.entries.length);
    const parsed = lines.map((l) => JSON.parse(l) as AuditEntry);
    expect(parsed.every((e) => typeof e.time === "string" && (e.decision === "allow" || e.decision === "deny"))).toBe(true);
    expect(parsed.some((e) => e.host === "blocked.test" && e.decision === "deny")).toBe(true);
  });
});

describe("CONNECT to an address allowed by an IP entry", () => {
  test("an SNI not on the allow-list is refused before any byte reaches the server (no fronting through an IP entry)", async () => {
    const n = h.entries.length;
    const before = servers.seen.length;
    const hello = await captureClientHello("evil.example");
    const out = await rawExchange(LOOP, h.port, [`CONNECT ${LOOP}:${servers.httpsPort} HTTP/1.1\r\n\r\n`, hello]);
    expect(out.toString("latin1")).toBe("HTTP/1.1 200 Connection established\r\n\r\n");
    const e = await lastEntry(h, n + 1);
    expect(e).toMatchObject({ method: "CONNECT", host: LOOP, decision: "deny", sni: "evil.example", bytesUp: 0, bytesDown: 0 });
    expect(e.reason).toContain("names evil.example, which is not on the allow-list");
    expect(servers.seen.length).toBe(before);
    // The full TLS client fares no better.
    const r = await tunnel(h.port, `${LOOP}:${servers.httpsPort}`, "evil.example");
    expect(r.body ?? "").toBe("");
    expect((await lastEntry(h, n + 2)).decision).toBe("deny");
  });

  test("a name under an allowed wildcard passes; a name listed only for another port does not", async () => {
    const p = await startProxy(["*.good.test", "other.test:1", LOOP]);
    try {
      const ok = await tunnel(p.port, `${LOOP}:${servers.httpsPort}`, "api.good.test");
      expect(ok.body).toContain(`hello ${LOOP}:${servers.httpsPort}`);
      // other.test is listed, but only for port 1: not for this tunnel's port.
      const wrongPort = await tunnel(p.port, `${LOOP}:${servers.httpsPort}`, "other.test");
      expect(wrongPort.body ?? "").toBe("");
      expect(p.entries.map((e) => e.decision)).toEqual(["allow", "deny"]);
    } finally {
      await p.proxy.close();
    }
  });

  test("with no SNI, or an allowed name, the tunnel works end to end", async () => {
    const n = h.entries.length;
    const none = await tunnel(h.port, `${LOOP}:${servers.httpsPort}`, undefined);
    expect(none.body).toContain(`hello ${LOOP}:${servers.httpsPort}`);
    const e1 = await lastEntry(h, n + 1);
    expect(e1).toMatchObject({ host: LOOP, decision: "allow", reason: `matched ${LOOP}` });
    expect(e1.sni).toBeUndefined();
    const named = await tunnel(h.port, `${LOOP}:${servers.httpsPort}`, "allowed.test");
    expect(named.body).toContain(`hello ${LOOP}:${servers.httpsPort}`);
    expect(await lastEntry(h, n + 2)).toMatchObject({ host: LOOP, decision: "allow", sni: "allowed.test" });
  });
});

describe("who may use the proxy", () => {
  test("a client outside the run's network is turned away and recorded", async () => {
    const audit = new AuditLog();
    const seen: AuditEntry[] = [];
    audit.onRecord((e) => seen.push(e));
    const clients = parseCidr("172.31.99.0/24");
    if (!clients) throw new Error("cidr");
    const proxy = new EgressProxy({ allow: allow(["allowed.test", LOOP]), audit, resolve, clients });
    const { port } = await proxy.listen(LOOP, 0);
    try {
      const out = await httpVia(port, `GET http://allowed.test:${servers.httpPort}/hello HTTP/1.1\r\n\r\n`);
      expect(out).toBe("");
      expect(seen[0]).toMatchObject({ decision: "deny", reason: "client outside the run's network 172.31.99.0/24" });
    } finally {
      await proxy.close();
    }
  });
});

describe("servers that misbehave", () => {
  test("a server that hangs up without answering gives the client a 502", async () => {
    const rude = createNetServer((s) => s.once("data", () => s.destroy()));
    await new Promise<void>((r) => rude.listen(0, LOOP, () => r()));
    try {
      const port = (rude.address() as AddressInfo).port;
      const n = h.entries.length;
      const res = await httpVia(h.port, `GET http://allowed.test:${port}/ HTTP/1.1\r\n\r\n`);
      expect(res.startsWith("HTTP/1.1 502")).toBe(true);
      expect((await lastEntry(h, n + 1)).decision).toBe("allow");
    } finally {
      rude.close();
    }
  });

  test("a refused connection is an allowed request with an error, and a 502", async () => {
    const closed = createNetServer();
    await new Promise<void>((r) => closed.listen(0, LOOP, () => r()));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const n = h.entries.length;
    const res = await httpVia(h.port, `CONNECT allowed.test:${port} HTTP/1.1\r\n\r\n`);
    expect(res.startsWith("HTTP/1.1 502")).toBe(true);
    expect((await lastEntry(h, n + 1)).error).toContain("ECONNREFUSED");
  });
});

describe("shutdown", () => {
  test("close() cuts an open tunnel and still records it", async () => {
    const p = await startProxy(["allowed.test", LOOP]);
    const raw = netConnect({ host: LOOP, port: p.port });
    raw.on("error", () => {});
    await new Promise((r) => raw.once("connect", r));
    raw.write(`CONNECT allowed.test:${servers.httpsPort} HTTP/1.1\r\n\r\n`);
    raw.write(await captureClientHello("allowed.test"));
    await Bun.sleep(200);
    await p.proxy.close();
    expect(p.entries.length).toBe(1);
    expect(p.entries[0]).toMatchObject({ decision: "allow", sni: "allowed.test" });
    expect(p.entries[0]?.bytesUp).toBeGreaterThan(0);
  });
});

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { parseAllowList } from "../../src/egress/allowlist.ts";
import { AuditLog, type AuditEntry } from "../../src/egress/audit.ts";
import { EgressProxy } from "../../src/egress/proxy.ts";
import { parseHostsTable, tableResolver } from "../../src/egress/resolve.ts";
import { makeCert, rawExchange, startServers, type TestServers, type TlsMaterial } from "./fixtures.ts";

/**
 * Ordered allow and deny rules, through the real proxy on loopback. Every
 * made-up name resolves to 127.0.0.1, where the test servers listen; the
 * rules list 127.0.0.1 as well, or the proxy would refuse to dial a loopback
 * address. That address rule comes before `*`, as rules after `*` are refused.
 */

const LOOP = "127.0.0.1";

const resolve = tableResolver(parseHostsTable(`127.0.0.1 jira.corp.test wiki.corp.test corp.test pypi.test api.test other.test`));

interface Harness {
  proxy: EgressProxy;
  port: number;
  entries: AuditEntry[];
}

async function startProxy(rules: string[]): Promise<Harness> {
  const parsed = parseAllowList(rules);
  if (!parsed.ok) throw new Error(parsed.error);
  const audit = new AuditLog();
  const entries: AuditEntry[] = [];
  audit.onRecord((e) => entries.push(e));
  const proxy = new EgressProxy({ allow: parsed.value, audit, resolve, helloTimeoutMs: 2000 });
  const { port } = await proxy.listen(LOOP, 0);
  return { proxy, port, entries };
}

async function entry(h: Harness, count: number): Promise<AuditEntry> {
  for (let i = 0; i < 100 && h.entries.length < count; i++) await Bun.sleep(20);
  const e = h.entries[count - 1];
  if (!e) throw new Error(`expected ${count} audit entries, got ${h.entries.length}`);
  return e;
}

function http(h: Harness, request: string): Promise<string> {
  return rawExchange(LOOP, h.port, [request], { timeoutMs: 5000 }).then((b) => b.toString("latin1"));
}

/** CONNECT, then (when answered 200) TLS with the host as SNI and GET /hello. */
function tunnel(h: Harness, host: string, port: number): Promise<{ status: string; body?: string }> {
  return new Promise((done) => {
    const raw: Socket = netConnect({ host: LOOP, port: h.port }, () => raw.write(`CONNECT ${host}:${port} HTTP/1.1\r\n\r\n`));
    raw.on("error", () => {});
    let head = "";
    const onData = (d: Buffer) => {
      head += d.toString("latin1");
      if (!head.includes("\r\n\r\n")) return;
      raw.off("data", onData);
      const status = head.split("\r\n")[0] ?? "";
      if (!status.includes(" 200 ")) {
        raw.destroy();
        done({ status });
        return;
      }
      const secure = tlsConnect({ socket: raw, servername: host, rejectUnauthorized: false });
      let body = "";
      secure.on("secureConnect", () => secure.write(`GET /hello HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`));
      secure.on("data", (c: Buffer) => (body += c.toString()));
      secure.on("error", () => done({ status, body }));
      secure.on("close", () => done({ status, body }));
    };
    raw.on("data", onData);
    setTimeout(() => raw.destroy(), 8000);
  });
}

let tls: TlsMaterial;
let servers: TestServers;

beforeAll(async () => {
  tls = makeCert(["jira.corp.test", "wiki.corp.test", "pypi.test", "api.test"]);
  servers = await startServers(LOOP, tls);
});

afterAll(async () => {
  await servers.close();
});

describe("the exceptions example: allow jira.corp.test, deny *.corp.test, allow the rest", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startProxy(["jira.corp.test", "!*.corp.test", LOOP, "*"]);
  });
  afterAll(async () => {
    await h.proxy.close();
  });

  test("plain HTTP: the exception is reached, the rest of its domain is refused, anything else is reached", async () => {
    const before = servers.seen.length;
    const jira = await http(h, `GET http://jira.corp.test:${servers.httpPort}/hello HTTP/1.1\r\n\r\n`);
    expect(jira.startsWith("HTTP/1.1 200")).toBe(true);
    expect(await entry(h, 1)).toMatchObject({ host: "jira.corp.test", decision: "allow", reason: "matched jira.corp.test" });

    const wiki = await http(h, `GET http://WIKI.corp.test.:${servers.httpPort}/hello HTTP/1.1\r\n\r\n`);
    expect(wiki.startsWith("HTTP/1.1 403")).toBe(true);
    expect(wiki).toContain("denied by !*.corp.test");
    expect(await entry(h, 2)).toMatchObject({ host: "wiki.corp.test", decision: "deny", reason: "denied by !*.corp.test", bytesUp: 0 });

    const pypi = await http(h, `GET http://pypi.test:${servers.httpPort}/hello HTTP/1.1\r\n\r\n`);
    expect(pypi.startsWith("HTTP/1.1 200")).toBe(true);
    expect(await entry(h, 3)).toMatchObject({ host: "pypi.test", decision: "allow", reason: "matched *" });
    // The domain itself is not below it: * decides.
    expect((await http(h, `GET http://corp.test:${servers.httpPort}/hello HTTP/1.1\r\n\r\n`)).startsWith("HTTP/1.1 200")).toBe(true);
    expect(servers.seen.slice(before).map((s) => s.host)).toEqual([`jira.corp.test:${servers.httpPort}`, `pypi.test:${servers.httpPort}`, `corp.test:${servers.httpPort}`]);
  });

  test("CONNECT: the same decisions for tunnels", async () => {
    const n = h.entries.length;
    const jira = await tunnel(h, "jira.corp.test", servers.httpsPort);
    expect(jira.body).toContain("hello jira.corp.test\n");
    const wiki = await tunnel(h, "wiki.corp.test", servers.httpsPort);
    expect(wiki.status).toContain("403");
    expect(await entry(h, n + 2)).toMatchObject({ method: "CONNECT", host: "wiki.corp.test", decision: "deny", reason: "denied by !*.corp.test" });
  });

  test("* vouches for no address: a name resolving to loopback still needs the address listed", async () => {
    const strict = await startProxy(["!*.corp.test", "*"]);
    try {
      const res = await http(strict, `GET http://pypi.test:${servers.httpPort}/hello HTTP/1.1\r\n\r\n`);
      expect(res.startsWith("HTTP/1.1 403")).toBe(true);
      expect((await entry(strict, 1)).reason).toBe("resolves to a refused address: 127.0.0.1 is a loopback address, not listed as an IP or CIDR");
      const literal = await http(strict, `GET http://${LOOP}:${servers.httpPort}/hello HTTP/1.1\r\n\r\n`);
      expect(literal.startsWith("HTTP/1.1 403")).toBe(true);
    } finally {
      await strict.proxy.close();
    }
  });

  test("a deny range refuses a name that resolves into it", async () => {
    const ranged = await startProxy([`!${LOOP}`, "pypi.test"]);
    try {
      const res = await http(ranged, `GET http://pypi.test:${servers.httpPort}/hello HTTP/1.1\r\n\r\n`);
      expect(res.startsWith("HTTP/1.1 403")).toBe(true);
      expect((await entry(ranged, 1)).reason).toBe(`resolves to a refused address: ${LOOP} is refused by !${LOOP}`);
    } finally {
      await ranged.proxy.close();
    }
  });
});

describe("method and path rules", () => {
  test("GET only: a POST to the same path is refused and never reaches the server", async () => {
    const h = await startProxy(["GET|HEAD api.test/hello", LOOP]);
    try {
      const before = servers.seen.length;
      const get = await http(h, `GET http://api.test:${servers.httpPort}/hello HTTP/1.1\r\n\r\n`);
      expect(get.startsWith("HTTP/1.1 200")).toBe(true);
      expect(await entry(h, 1)).toMatchObject({ method: "GET", decision: "allow", reason: "matched GET|HEAD api.test/hello" });

      const post = await http(h, `POST http://api.test:${servers.httpPort}/hello HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello`);
      expect(post.startsWith("HTTP/1.1 403")).toBe(true);
      expect(await entry(h, 2)).toMatchObject({ method: "POST", host: "api.test", decision: "deny", reason: "no rule allows POST /hello on this host", bytesUp: 0 });

      const elsewhere = await http(h, `GET http://api.test:${servers.httpPort}/echo HTTP/1.1\r\n\r\n`);
      expect(elsewhere.startsWith("HTTP/1.1 403")).toBe(true);
      expect(servers.seen.slice(before).map((s) => `${s.method} ${s.url}`)).toEqual(["GET /hello"]);

      // A tunnel hides the method and path, so it cannot be held to the rule: refused.
      const t = await tunnel(h, "api.test", servers.httpsPort);
      expect(t.status).toContain("403");
      expect((await entry(h, 4)).reason).toBe("GET|HEAD api.test/hello depends on the method or path, which a CONNECT tunnel does not show (sandbox does not decrypt TLS)");
    } finally {
      await h.proxy.close();
    }
  });

  test("a deny rule for one method and path, then the host: only that is refused, however the path is spelled", async () => {
    const h = await startProxy(["!POST api.test/echo", "api.test", LOOP]);
    try {
      const before = servers.seen.length;
      const post = await http(h, `POST http://api.test:${servers.httpPort}/echo HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi`);
      expect(post.startsWith("HTTP/1.1 403")).toBe(true);
      expect(await entry(h, 1)).toMatchObject({ method: "POST", decision: "deny", reason: "denied by !POST api.test/echo" });
      // %65 is "e", and x/.. resolves away: still /echo.
      for (const spelling of ["/%65cho", "/x/../echo", "/x/%2e%2e/echo"]) {
        const res = await http(h, `POST http://api.test:${servers.httpPort}${spelling} HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi`);
        expect(res.startsWith("HTTP/1.1 403")).toBe(true);
      }
      const get = await http(h, `GET http://api.test:${servers.httpPort}/hello HTTP/1.1\r\n\r\n`);
      expect(get.startsWith("HTTP/1.1 200")).toBe(true);
      expect(servers.seen.slice(before).map((s) => `${s.method} ${s.url}`)).toEqual(["GET /hello"]);
    } finally {
      await h.proxy.close();
    }
  });
});

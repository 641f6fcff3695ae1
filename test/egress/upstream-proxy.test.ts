/**
 * The egress proxy behind the host's own proxy (HTTPS_PROXY/HTTP_PROXY/
 * NO_PROXY, issue #15), on loopback: a fake CONNECT-capable upstream proxy
 * records what it is asked and reaches fake origins by its own table of
 * names, so the egress proxy looks nothing up for names it hands over.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUILTIN_CREDENTIALS } from "../../src/core/builtin-credentials.ts";
import { permittedNames } from "../../src/core/credentials.ts";
import { parseAllowList } from "../../src/egress/allowlist.ts";
import { AuditLog, type AuditEntry } from "../../src/egress/audit.ts";
import { resolveCredentials } from "../../src/egress/credential-source.ts";
import { CredentialInterceptor, type InjectionEvent } from "../../src/egress/intercept.ts";
import { EgressProxy } from "../../src/egress/proxy.ts";
import { tableResolver } from "../../src/egress/resolve.ts";
import { RunCa } from "../../src/egress/run-ca.ts";
import { bypassesProxy, parseNoProxy, upstreamFor, upstreamProxiesFromEnv } from "../../src/egress/upstream-proxy.ts";
import { curlVia, eventually, fakeOrigin, fakeUpstreamProxy, LOOP, type FakeUpstreamProxy, type Origin } from "./fake-hosts.ts";
import { makeSignedServer, writePem } from "./upstream-tls.ts";

describe("reading the host's proxy variables", () => {
  test("lower case wins; the URL's password becomes Proxy-Authorization and is never shown", () => {
    const parsed = upstreamProxiesFromEnv({ HTTPS_PROXY: "http://upper:3128", https_proxy: "http://us%40er:p%3Ass@Proxy.Corp.Example:8080/", HTTP_PROXY: "10.0.0.1:3128", NO_PROXY: ".corp.example, 10.0.0.0/8" });
    if (!parsed.ok || !parsed.value) throw new Error("expected proxies");
    const { https, http } = parsed.value;
    expect(https).toMatchObject({ host: "proxy.corp.example", port: 8080, shown: "http://proxy.corp.example:8080", from: "https_proxy" });
    expect(https?.authorization?.reveal()).toBe(`Basic ${Buffer.from("us@er:p:ss").toString("base64")}`);
    expect(JSON.stringify(parsed.value)).not.toContain("p:ss");
    expect(JSON.stringify(parsed.value)).not.toContain(Buffer.from("us@er:p:ss").toString("base64"));
    expect(http).toMatchObject({ host: "10.0.0.1", port: 3128, shown: "http://10.0.0.1:3128", from: "HTTP_PROXY" });
    expect(http?.authorization).toBeUndefined();
    expect(parsed.value.noProxyText).toBe(".corp.example, 10.0.0.0/8");
  });

  test("none set (or NO_PROXY alone) means direct; unusable URLs are refused without echoing them", () => {
    expect(upstreamProxiesFromEnv({ NO_PROXY: "*" })).toEqual({ ok: true, value: undefined });
    expect(upstreamProxiesFromEnv({ HTTPS_PROXY: "" })).toEqual({ ok: true, value: undefined });
    const socks = upstreamProxiesFromEnv({ HTTPS_PROXY: "socks5://u:secret@h:1080" });
    expect(socks.ok ? "" : socks.error).toBe("HTTPS_PROXY names a socks5:// proxy; sandbox's egress proxy talks to an upstream proxy over plain http:// only (CONNECT carries the TLS)");
    const path = upstreamProxiesFromEnv({ http_proxy: "http://u:secret@h:3128/path" });
    expect(path.ok ? "" : path.error).toBe("http_proxy has a path or query after the proxy's address; write http://host:port");
    const junk = upstreamProxiesFromEnv({ HTTPS_PROXY: "http://exa mple:secret@:x" });
    expect(junk.ok).toBe(false);
    expect(JSON.stringify(junk)).not.toContain("secret");
  });

  test("NO_PROXY: names cover themselves and below, addresses and ranges the literal asked for, ports narrow", () => {
    const entries = parseNoProxy("corp.example,.other.example, *.third.example ,10.0.0.0/8,[2001:db8::1],only.example:8443,not a host!,");
    expect(bypassesProxy(entries, "corp.example", 443)).toBe(true);
    expect(bypassesProxy(entries, "a.b.corp.example", 443)).toBe(true);
    expect(bypassesProxy(entries, "xcorp.example", 443)).toBe(false);
    expect(bypassesProxy(entries, "other.example", 443)).toBe(true);
    expect(bypassesProxy(entries, "x.third.example", 443)).toBe(true);
    expect(bypassesProxy(entries, "10.1.2.3", 443)).toBe(true);
    expect(bypassesProxy(entries, "2001:db8::1", 443)).toBe(true);
    expect(bypassesProxy(entries, "only.example", 8443)).toBe(true);
    expect(bypassesProxy(entries, "only.example", 443)).toBe(false);
    expect(bypassesProxy(entries, "pypi.org", 443)).toBe(false);
    expect(bypassesProxy(parseNoProxy("*"), "pypi.org", 443)).toBe(true);
    const parsed = upstreamProxiesFromEnv({ HTTPS_PROXY: "h:1" });
    if (!parsed.ok) throw new Error(parsed.error);
    // Only HTTPS_PROXY: tunnels go through it, plain HTTP goes direct.
    expect(upstreamFor(parsed.value, "tunnel", "pypi.org", 443)?.shown).toBe("http://h:1");
    expect(upstreamFor(parsed.value, "http", "pypi.org", 80)).toBeUndefined();
  });
});

const TOKEN = `ghp_REAL${randomBytes(8).toString("hex")}`;
const PASSWORD = `pw-${randomBytes(6).toString("hex")}`;

let dir: string;
let origin: Origin;
let plain: Origin;
let direct: Origin;
let upstream: FakeUpstreamProxy;
let proxy: EgressProxy;
let proxyPort: number;
let runCaPath: string;
let originCaPath: string;
const entries: AuditEntry[] = [];
const events: InjectionEvent[] = [];

describe("through a fake upstream proxy on loopback", () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "sandbox-upstream-proxy-"));
    const server = makeSignedServer(["api.github.com", "other.test", "direct.test"], "upstream proxy test CA");
    origin = await fakeOrigin(server);
    plain = await fakeOrigin();
    direct = await fakeOrigin(server);
    originCaPath = writePem(dir, "origin-ca.pem", server.caPem);
    // The corporate proxy knows the names; the egress proxy's own resolver knows none but the NO_PROXY ones.
    upstream = await fakeUpstreamProxy(
      new Map([
        ["api.github.com:443", origin.port],
        ["other.test:443", origin.port],
        ["blocked.test:443", origin.port],
        ["plain.test:80", plain.port],
      ]),
    );
    const env = {
      HTTPS_PROXY: `http://corp-user:${PASSWORD}@${LOOP}:${upstream.port}`,
      HTTP_PROXY: `http://corp-user:${PASSWORD}@${LOOP}:${upstream.port}`,
      NO_PROXY: "direct.test,rebind.test",
    };
    const proxies = upstreamProxiesFromEnv(env);
    if (!proxies.ok || !proxies.value) throw new Error("expected proxies");

    const resolved = await resolveCredentials(BUILTIN_CREDENTIALS.filter((r) => r.name === "github-api"), { env: { GH_TOKEN: TOKEN }, homeDir: dir, cwd: dir });
    const ca = RunCa.create({ lifetimeMs: 600_000, permittedNames: permittedNames(resolved.used.map((c) => c.rule)), label: "upstream-proxy-test" });
    runCaPath = writePem(dir, "run-ca.pem", ca.certificatePem);
    const allow = parseAllowList(["api.github.com", "other.test", "plain.test", "direct.test", "rebind.test", "127.0.0.1"]);
    if (!allow.ok) throw new Error(allow.error);
    const audit = new AuditLog();
    audit.onRecord((e) => entries.push(e));
    proxy = new EgressProxy({
      allow: allow.value,
      audit,
      resolve: tableResolver(
        new Map([
          ["direct.test", [LOOP]],
          ["rebind.test", ["10.9.9.9"]],
        ]),
      ),
      intercept: new CredentialInterceptor({ ca, credentials: resolved.used, upstreamCa: [server.caPem], onInjection: (e) => events.push(e), handshakeTimeoutMs: 5000 }),
      upstreamProxy: proxies.value,
      helloTimeoutMs: 5000,
    });
    proxyPort = (await proxy.listen(LOOP, 0)).port;
  });

  afterAll(async () => {
    await proxy?.close();
    await Promise.all([origin?.close(), plain?.close(), direct?.close(), upstream?.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  const basic = `Basic ${Buffer.from(`corp-user:${PASSWORD}`).toString("base64")}`;
  const curl = (args: string[]) => curlVia(proxyPort, args, dir);

  test("an intercepted host: CONNECT with Proxy-Authorization to the upstream, TLS verified end to end, the credential reaches the origin", async () => {
    const before = upstream.seen.length;
    const r = await curl(["--cacert", runCaPath, "https://api.github.com/user"]);
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout)).toMatchObject({ method: "GET", url: "/user", host: "api.github.com" });
    expect(upstream.seen.slice(before)).toEqual([{ line: "CONNECT api.github.com:443 HTTP/1.1", proxyAuthorization: basic }]);
    expect(origin.seen.at(-1)?.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(events.at(-1)).toMatchObject({ host: "api.github.com", rule: "github-api" });
    const line = await eventually(() => entries.find((e) => e.host === "api.github.com"), "api.github.com's line");
    expect(line).toMatchObject({ decision: "allow", reason: "matched api.github.com", via: `http://${LOOP}:${upstream.port}`, sni: "api.github.com" });
    expect(line.address).toBeUndefined();
  });

  test("a plain tunnel goes through it untouched: the client sees the origin's own certificate", async () => {
    const before = upstream.seen.length;
    const r = await curl(["--cacert", originCaPath, "https://other.test/x"]);
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout)).toMatchObject({ url: "/x", host: "other.test" });
    expect(upstream.seen.slice(before).map((s) => s.line)).toEqual(["CONNECT other.test:443 HTTP/1.1"]);
  });

  test("plain HTTP is sent to it in absolute form, with its credentials and not the client's", async () => {
    const before = upstream.seen.length;
    const r = await curl(["-H", "Proxy-Authorization: Basic Y2xpZW50OnNlY3JldA==", "http://plain.test/hello?q=1"]);
    expect(JSON.parse(r.stdout)).toMatchObject({ method: "GET", url: "http://plain.test/hello?q=1", host: "plain.test" });
    expect(upstream.seen.slice(before)).toEqual([{ line: "GET http://plain.test/hello?q=1 HTTP/1.1", proxyAuthorization: basic }]);
  });

  test("a denied host never reaches it", async () => {
    const before = upstream.seen.length;
    const r = await curl(["--cacert", originCaPath, "-w", "%{http_code}", "https://blocked.test/"]);
    expect(r.code).not.toBe(0);
    expect(upstream.seen.length).toBe(before);
    const line = await eventually(() => entries.find((e) => e.host === "blocked.test"), "blocked.test's line");
    expect(line).toMatchObject({ decision: "deny", reason: "not on the allow-list" });
  });

  test("NO_PROXY hosts go direct, with the address policy: a listed address is dialled, an unlisted private one refused", async () => {
    const before = upstream.seen.length;
    const ok = await curl(["--cacert", originCaPath, `https://direct.test:${direct.port}/d`]);
    expect(ok.stderr).toBe("");
    expect(JSON.parse(ok.stdout)).toMatchObject({ url: "/d" });
    expect(direct.seen.length).toBe(1);
    const rebind = await curl(["--cacert", originCaPath, "https://rebind.test/"]);
    expect(rebind.code).not.toBe(0);
    expect(upstream.seen.length).toBe(before);
    const line = await eventually(() => entries.find((e) => e.host === "rebind.test"), "rebind.test's line");
    expect(line.reason).toContain("resolves to a refused address: 10.9.9.9 is a private-network address");
    const directLine = await eventually(() => entries.find((e) => e.host === "direct.test"), "direct.test's line");
    expect(directLine).toMatchObject({ address: LOOP });
    expect(directLine.via).toBeUndefined();
  });

  test("a refusal by the upstream proxy reaches the client as a 502 saying so", async () => {
    upstream.refuseWith = 407;
    const mark = entries.length;
    try {
      const r = await curl(["--cacert", originCaPath, "-w", "\n%{http_code}", "https://other.test/"]);
      // curl does not print the body of a failed CONNECT; it names the status.
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain("502");
      const line = await eventually(() => entries.slice(mark).find((e) => e.host === "other.test"), "the failed tunnel's line");
      expect(line.error).toBe(`the upstream proxy http://${LOOP}:${upstream.port} refused the tunnel to other.test:443: 407 No`);
    } finally {
      upstream.refuseWith = undefined;
    }
  });

  test("no password, token or Proxy-Authorization value in the audit", async () => {
    const text = JSON.stringify(entries) + JSON.stringify(events);
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain(Buffer.from(`corp-user:${PASSWORD}`).toString("base64"));
  });
});

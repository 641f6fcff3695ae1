/**
 * An --egress run behind the host's proxy (HTTPS_PROXY, issue #15), end to
 * end on Docker: the egress proxy sends its tunnels to a fake CONNECT proxy
 * on this machine's loopback (which "resolves" names from its own table to a
 * fake HTTPS server on loopback, certificate from a test CA trusted with
 * --ca-cert), with the credentials from the proxy URL; the credential for
 * api.anthropic.com is added through that chain, and a method/path rule on
 * that intercepted host is applied per request. Nothing leaves the machine.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fakeOrigin, fakeUpstreamProxy, LOOP, type FakeUpstreamProxy, type Origin } from "../egress/fake-hosts.ts";
import { makeSignedServer } from "../egress/upstream-tls.ts";
import { IS_PODMAN, runSandbox } from "../helpers/sandbox.ts";

const NODE_IMAGE = "sandbox-test/node:22";
const SECRET = `sk-ant-test-${randomBytes(12).toString("hex")}`;
const PASSWORD = `corp-pw-${randomBytes(6).toString("hex")}`;

/** POSTs or GETs https://HOST/PATH through $HTTPS_PROXY (node has no proxy support of its own); prints `label: status body`. */
const CLIENT = `
const http = require("node:http"), https = require("node:https"), tls = require("node:tls");
const proxy = new URL(process.env.HTTPS_PROXY);
function call(method, host, path, headers) {
  return new Promise((resolve) => {
    const c = http.request({ host: proxy.hostname, port: proxy.port, method: "CONNECT", path: host + ":443", headers: { host: host + ":443" } });
    c.on("connect", (res, socket) => {
      if (res.statusCode !== 200) return resolve("CONNECT " + res.statusCode);
      const r = https.request({ host, port: 443, path, method, headers, createConnection: () => tls.connect({ socket, servername: host }) }, (resp) => {
        let b = "";
        resp.on("data", (d) => (b += d));
        resp.on("end", () => resolve(resp.statusCode + " " + b.trim()));
      });
      r.on("error", (e) => resolve("error " + e.message));
      r.end(method === "POST" ? "{}" : undefined);
    });
    c.on("error", (e) => resolve("error " + e.message));
    c.end();
  });
}
(async () => {
  console.log("messages: " + (await call("POST", "api.anthropic.com", "/v1/messages", { "x-api-key": process.env.ANTHROPIC_API_KEY })));
  console.log("models: " + (await call("GET", "api.anthropic.com", "/v1/models", { "x-api-key": process.env.ANTHROPIC_API_KEY })));
  console.log("plain: " + (await call("GET", "plain.test", "/p", {})));
  console.log("blocked: " + (await call("GET", "blocked.test", "/b", {})));
})();
`;

const work = mkdtempSync(join(tmpdir(), "sandbox-upstream-"));
const records = mkdtempSync(join(tmpdir(), "sandbox-upstream-host-"));
const auditFile = join(records, "audit.jsonl");
const caFile = join(records, "test-ca.pem");

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
  rmSync(records, { recursive: true, force: true });
});

describe.skipIf(IS_PODMAN)("--egress behind the host's proxy (Docker)", () => {
  let origin: Origin;
  let upstream: FakeUpstreamProxy;

  beforeAll(async () => {
    const tls = makeSignedServer(["api.anthropic.com", "plain.test", "blocked.test"], "sandbox upstream proxy test CA");
    writeFileSync(caFile, tls.caPem);
    writeFileSync(join(work, "client.js"), CLIENT);
    origin = await fakeOrigin(tls);
    upstream = await fakeUpstreamProxy(
      new Map([
        ["api.anthropic.com:443", origin.port],
        ["plain.test:443", origin.port],
        ["blocked.test:443", origin.port],
      ]),
    );
  });

  afterAll(async () => {
    await upstream?.close();
    await origin?.close();
  });

  test("tunnels go through it with its credentials; the key is added through the chain; method/path rules hold per request", async () => {
    const env = { ANTHROPIC_API_KEY: SECRET, XDG_STATE_HOME: join(records, "state"), HTTPS_PROXY: `http://corp:${PASSWORD}@${LOOP}:${upstream.port}`, NO_PROXY: "localhost" };
    const args = ["run", "--image", NODE_IMAGE, "--egress", "POST api.anthropic.com/v1/messages,plain.test", "--ca-cert", caFile, "--audit", auditFile];
    const r = await runSandbox([...args, "node", "/work/client.js"], { cwd: work, env, timeoutMs: 110_000 });
    const out = r.stdout.toString();
    if (r.code !== 0) console.error(r.stderr, out);
    expect(r.code).toBe(0);
    expect(out).toContain('messages: 200 {"method":"POST","url":"/v1/messages","host":"api.anthropic.com:443"}');
    expect(out).toContain("models: 403 sandbox egress proxy: no rule allows GET /v1/models on this host");
    expect(out).toContain('plain: 200 {"method":"GET","url":"/p","host":"plain.test:443"}');
    expect(out).toContain("blocked: CONNECT 403");
    expect(r.stderr).toContain(`sandbox: egress: the proxy connects through http://${LOOP}:${upstream.port} for HTTPS (HTTPS_PROXY); hosts in NO_PROXY go direct`);

    // The upstream saw the two allowed tunnels (the denied one never), each with the URL's credentials.
    const basic = `Basic ${Buffer.from(`corp:${PASSWORD}`).toString("base64")}`;
    expect(upstream.seen.map((s) => s.line).sort()).toEqual(["CONNECT api.anthropic.com:443 HTTP/1.1", "CONNECT api.anthropic.com:443 HTTP/1.1", "CONNECT plain.test:443 HTTP/1.1"]);
    expect(upstream.seen.every((s) => s.proxyAuthorization === basic)).toBe(true);
    // The origin got the key on the allowed request only; the refused one never arrived.
    const anthropic = origin.seen.filter((s) => s.headers.host === "api.anthropic.com:443");
    expect(anthropic.map((s) => [s.method, s.url, s.headers["x-api-key"]])).toEqual([["POST", "/v1/messages", SECRET]]);

    const text = readFileSync(auditFile, "utf8");
    for (const hidden of [SECRET, PASSWORD, basic]) {
      expect(text).not.toContain(hidden);
      expect(r.stderr).not.toContain(hidden);
    }
    const lines = text.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.find((l) => l.method === "GET" && l.host === "api.anthropic.com")).toMatchObject({ path: "/v1/models", decision: "deny" });
    expect(lines.filter((l) => l.method === "CONNECT" && l.decision === "allow").every((l) => l.via === `http://${LOOP}:${upstream.port}`)).toBe(true);
  }, 120_000);
});

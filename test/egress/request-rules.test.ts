/**
 * Method and path rules inside tunnels the credential interceptor ends
 * (issue #15): a CONNECT that only the requests can decide is let through
 * for such a host, and each request is judged by the rules, on loopback,
 * with a fake api.github.com (certificate from a test CA) behind an upstream
 * override. Also the Host header's port inside such a tunnel.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { connect as netConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import { BUILTIN_CREDENTIALS } from "../../src/core/builtin-credentials.ts";
import { permittedNames } from "../../src/core/credentials.ts";
import { parseAllowList } from "../../src/egress/allowlist.ts";
import { AuditLog, type AuditEntry } from "../../src/egress/audit.ts";
import { selectCredentialRules } from "../../src/egress/credential-plan.ts";
import { resolveCredentials } from "../../src/egress/credential-source.ts";
import { CredentialInterceptor } from "../../src/egress/intercept.ts";
import { EgressProxy } from "../../src/egress/proxy.ts";
import { tableResolver } from "../../src/egress/resolve.ts";
import { RunCa } from "../../src/egress/run-ca.ts";
import { curlVia, eventually, fakeOrigin, LOOP, type Origin } from "./fake-hosts.ts";
import { makeSignedServer, writePem } from "./upstream-tls.ts";

const TOKEN = `ghp_REAL${randomBytes(8).toString("hex")}`;
const RULES = ["GET api.github.com/repos/**", "GET plain.test/x/**"];

let dir: string;
let origin: Origin;
let proxy: EgressProxy;
let proxyPort: number;
let runCaPath: string;
let runCaPem: string;
const entries: AuditEntry[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "sandbox-request-rules-"));
  const server = makeSignedServer(["api.github.com", "plain.test"], "request rules test CA");
  origin = await fakeOrigin(server);
  const allow = parseAllowList(RULES);
  if (!allow.ok) throw new Error(allow.error);

  // The credential plan counts a host that only method/path rules reach: its tunnel will be read.
  const selection = selectCredentialRules(BUILTIN_CREDENTIALS, allow.value, new Set());
  expect(selection.candidates.map((r) => r.name)).toEqual(["github-api"]);
  const resolved = await resolveCredentials(selection.candidates, { env: { GH_TOKEN: TOKEN, PATH: "/nonexistent" }, homeDir: dir, cwd: dir });
  const ca = RunCa.create({ lifetimeMs: 600_000, permittedNames: permittedNames(resolved.used.map((c) => c.rule)), label: "request-rules-test" });
  runCaPem = ca.certificatePem;
  runCaPath = writePem(dir, "run-ca.pem", runCaPem);

  const audit = new AuditLog();
  audit.onRecord((e) => entries.push(e));
  proxy = new EgressProxy({
    allow: allow.value,
    audit,
    resolve: tableResolver(new Map()),
    intercept: new CredentialInterceptor({ ca, credentials: resolved.used, upstreamCa: [server.caPem], handshakeTimeoutMs: 5000 }),
    upstreamOverrides: new Map([
      ["api.github.com:443", { host: LOOP, port: origin.port }],
      ["plain.test:443", { host: LOOP, port: origin.port }],
    ]),
    helloTimeoutMs: 5000,
  });
  proxyPort = (await proxy.listen(LOOP, 0)).port;
});

afterAll(async () => {
  await proxy?.close();
  await origin?.close();
  rmSync(dir, { recursive: true, force: true });
});

const curl = (args: string[]) => curlVia(proxyPort, ["--cacert", runCaPath, ...args], dir);

describe("GET api.github.com/repos/** on a host whose credential the proxy adds", () => {
  test("GET /repos/x is allowed and gets the credential; the tunnel's line says requests are judged one by one", async () => {
    const before = origin.seen.length;
    const r = await curl(["https://api.github.com/repos/o/r?per_page=1"]);
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout)).toMatchObject({ method: "GET", url: "/repos/o/r?per_page=1", host: "api.github.com" });
    expect(origin.seen[before]?.headers.authorization).toBe(`Bearer ${TOKEN}`);
    const tunnel = await eventually(() => entries.find((e) => e.method === "CONNECT" && e.host === "api.github.com"), "the tunnel's audit line");
    expect(tunnel).toMatchObject({ decision: "allow", reason: "each request decided by the rules (GET api.github.com/repos/** depends on the method or path)", sni: "api.github.com" });
  });

  test("POST /repos/x is refused with 403, never reaches the origin, and is audited with the reason", async () => {
    const before = origin.seen.length;
    const r = await curl(["-w", "\n%{http_code}", "-d", "{}", "https://api.github.com/repos/o/r/issues"]);
    expect(r.stdout).toContain("no rule allows POST /repos/o/r/issues on this host");
    expect(r.stdout.endsWith("\n403")).toBe(true);
    expect(origin.seen.length).toBe(before);
    const line = await eventually(() => entries.find((e) => e.method === "POST" && e.host === "api.github.com"), "the refused request's audit line");
    expect(line).toMatchObject({ host: "api.github.com", port: 443, path: "/repos/o/r/issues", decision: "deny", reason: "no rule allows POST /repos/o/r/issues on this host" });
    expect(JSON.stringify(entries)).not.toContain(TOKEN);
  });

  test("GET outside /repos is refused too; so is a path the rules cannot judge", async () => {
    const user = await curl(["-w", "\n%{http_code}", "https://api.github.com/user"]);
    expect(user.stdout.endsWith("\n403")).toBe(true);
    const encoded = await curl(["-w", "\n%{http_code}", "--path-as-is", "https://api.github.com/repos/..%2Fuser"]);
    expect(encoded.stdout).toContain("cannot judge a path with");
    expect(encoded.stdout.endsWith("\n403")).toBe(true);
  });

  test("a host without a credential rule keeps the old answer: the tunnel is refused", async () => {
    const r = await curlVia(proxyPort, ["-w", "\n%{http_code}", "https://plain.test/x/1"], dir);
    expect(r.code).not.toBe(0);
    const line = await eventually(() => entries.find((e) => e.host === "plain.test"), "plain.test's line");
    expect(line).toMatchObject({ decision: "deny" });
    expect(line.reason).toContain("which a CONNECT tunnel does not show");
  });
});

describe("the Host header's port inside an intercepted tunnel", () => {
  async function exchange(hostHeader: string): Promise<string> {
    const raw = netConnect({ host: LOOP, port: proxyPort });
    raw.on("error", () => {});
    await new Promise((r) => raw.once("connect", r));
    raw.write("CONNECT api.github.com:443 HTTP/1.1\r\nHost: api.github.com:443\r\n\r\n");
    await new Promise<void>((resolve) => {
      let got = "";
      const onData = (d: Buffer) => {
        got += d.toString("latin1");
        if (got.includes("\r\n\r\n")) {
          raw.off("data", onData);
          resolve();
        }
      };
      raw.on("data", onData);
    });
    const s = tls.connect({ socket: raw, servername: "api.github.com", ca: runCaPem, ALPNProtocols: ["http/1.1"] });
    let text = "";
    s.on("data", (d: Buffer) => (text += d.toString("latin1")));
    s.on("error", () => {});
    await new Promise((r) => s.once("secureConnect", r));
    s.write(`GET /repos/o/r HTTP/1.1\r\nHost: ${hostHeader}\r\nConnection: close\r\n\r\n`);
    await new Promise((r) => s.once("close", r));
    return text;
  }

  test("port 80 inside the tunnel to 443 is refused (421) before anything is sent", async () => {
    const before = origin.seen.length;
    const text = await exchange("api.github.com:80");
    expect(text).toStartWith("HTTP/1.1 421 Misdirected Request");
    expect(text).toContain("the Host header names api.github.com:80, not port 443");
    expect(origin.seen.length).toBe(before);
  });

  test("no port, or :443, is the tunnel's own", async () => {
    expect(await exchange("api.github.com")).toStartWith("HTTP/1.1 200");
    expect(await exchange("api.github.com:443")).toStartWith("HTTP/1.1 200");
  });
});

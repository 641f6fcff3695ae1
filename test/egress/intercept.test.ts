/**
 * The credential proxy end to end, on loopback: a client (curl, or node:tls
 * by hand) asks the egress proxy for https://api.anthropic.com and friends;
 * upstreamOverrides send those names to fake HTTPS servers on 127.0.0.1 with
 * certificates from a test CA (openssl), which the interceptor is told to
 * trust. Nothing leaves the machine; no name is looked up.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpsServer } from "node:https";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { connect as netConnect, type AddressInfo, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import { BUILTIN_CREDENTIALS } from "../../src/core/builtin-credentials.ts";
import { PLACEHOLDER, permittedNames, type CredentialRule } from "../../src/core/credentials.ts";
import { parseAllowList } from "../../src/egress/allowlist.ts";
import { AuditLog, type AuditEntry } from "../../src/egress/audit.ts";
import { resolveCredentials } from "../../src/egress/credential-source.ts";
import { CredentialInterceptor, type InjectionEvent } from "../../src/egress/intercept.ts";
import { EgressProxy } from "../../src/egress/proxy.ts";
import { tableResolver } from "../../src/egress/resolve.ts";
import { RunCa } from "../../src/egress/run-ca.ts";
import { makeSignedServer, writePem } from "./upstream-tls.ts";

const LOOP = "127.0.0.1";
const ANTHROPIC_KEY = `sk-ant-REAL-${randomBytes(8).toString("hex")}`;
const GITHUB_TOKEN = `ghp_REAL${randomBytes(8).toString("hex")}`;
const UNTRUSTED_TOKEN = `untrusted-REAL-${randomBytes(8).toString("hex")}`;
const OPENAI_KEY = `sk-REAL-${randomBytes(8).toString("hex")}`;

interface Seen {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  bodyLength: number;
  bodySha: string;
}

interface Upstream {
  port: number;
  seen: Seen[];
  close(): Promise<void>;
}

/** Answers with what it received (JSON); /big/N sends N bytes; an Upgrade gets 101 and an echo. */
async function fakeUpstream(key: string, cert: string): Promise<Upstream> {
  const seen: Seen[] = [];
  const server = createHttpsServer({ key, cert }, (req: IncomingMessage, res: ServerResponse) => {
    const hash = createHash("sha256");
    let length = 0;
    req.on("data", (c: Buffer) => {
      hash.update(c);
      length += c.length;
    });
    req.on("end", () => {
      const entry = { method: req.method ?? "", url: req.url ?? "", headers: { ...req.headers }, bodyLength: length, bodySha: hash.digest("hex") };
      seen.push(entry);
      const big = /^\/big\/(\d+)$/.exec(req.url ?? "");
      if (big) {
        const total = Number(big[1]);
        res.writeHead(200, { "content-length": String(total) });
        const block = Buffer.alloc(1 << 20, "y");
        let left = total;
        const pump = () => {
          while (left > 0) {
            const n = Math.min(left, block.length);
            left -= n;
            if (!res.write(n === block.length ? block : block.subarray(0, n))) return void res.once("drain", pump);
          }
          res.end();
        };
        return pump();
      }
      const body = JSON.stringify({ url: entry.url, host: req.headers.host, bodyLength: length, bodySha: entry.bodySha });
      res.writeHead(200, { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) });
      res.end(body);
    });
  }) as unknown as Server;
  server.on("upgrade", (req: IncomingMessage, socket: Socket) => {
    seen.push({ method: req.method ?? "", url: req.url ?? "", headers: { ...req.headers }, bodyLength: 0, bodySha: "" });
    socket.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n");
    socket.on("data", (d: Buffer) => socket.write(Buffer.concat([Buffer.from("echo:"), d])));
    socket.on("error", () => {});
  });
  const sockets = new Set<Socket>();
  server.on("connection", (s: Socket) => (sockets.add(s), s.on("close", () => sockets.delete(s))));
  await new Promise<void>((r) => server.listen(0, LOOP, r));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

const untrustedRule: CredentialRule = {
  name: "untrusted-test",
  hosts: ["untrusted.test"],
  header: "authorization",
  format: { kind: "template", template: "Bearer {value}" },
  sources: [{ env: "UNTRUSTED_TOKEN" }],
  placeholders: [],
};

let dir: string;
let good: Upstream;
let rogue: Upstream;
let proxy: EgressProxy;
let proxyPort: number;
let runCaPath: string;
let goodCaPath: string;
const events: InjectionEvent[] = [];
const entries: AuditEntry[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "sandbox-intercept-test-"));
  const goodTls = makeSignedServer(["api.anthropic.com", "github.com", "api.github.com", "other.test"], "test upstream CA");
  const rogueTls = makeSignedServer(["untrusted.test"], "rogue CA");
  good = await fakeUpstream(goodTls.key, goodTls.cert);
  rogue = await fakeUpstream(rogueTls.key, rogueTls.cert);
  goodCaPath = writePem(dir, "upstream-ca.pem", goodTls.caPem);

  // The real flow: values from (a stand-in for) sandbox's environment, through the resolver.
  const env = { ANTHROPIC_API_KEY: ANTHROPIC_KEY, OPENAI_API_KEY: OPENAI_KEY, GH_TOKEN: GITHUB_TOKEN, UNTRUSTED_TOKEN, PATH: "/nonexistent" };
  const resolved = await resolveCredentials([...BUILTIN_CREDENTIALS, untrustedRule], { env, homeDir: dir, cwd: dir });
  const rules = resolved.used.map((c) => c.rule);
  expect(rules.map((r) => r.name)).toEqual(["anthropic-api-key", "openai-api-key", "github-api", "github-git", "untrusted-test"]);
  const ca = RunCa.create({ lifetimeMs: 600_000, permittedNames: permittedNames(rules), label: "intercept-test" });
  runCaPath = writePem(dir, "run-ca.pem", ca.certificatePem);

  const interceptor = new CredentialInterceptor({
    ca,
    credentials: resolved.used,
    upstreamCa: [goodTls.caPem],
    onInjection: (e) => events.push(e),
    // Stands in for per-request egress rules (method, path), which the lead may wire here.
    checkRequest: ({ path }) => (path === "/forbidden" ? "refused by the test's request policy" : undefined),
    handshakeTimeoutMs: 5000,
  });
  const audit = new AuditLog();
  audit.onRecord((e) => entries.push(e));
  const allow = parseAllowList(["api.anthropic.com", "api.openai.com", "github.com", "api.github.com", "other.test", "untrusted.test"]);
  if (!allow.ok) throw new Error(allow.error);
  const to = (u: Upstream) => ({ host: LOOP, port: u.port });
  proxy = new EgressProxy({
    allow: allow.value,
    audit,
    // No name resolves: only the overrides lead anywhere.
    resolve: tableResolver(new Map()),
    intercept: interceptor,
    upstreamOverrides: new Map([
      ["api.anthropic.com:443", to(good)],
      ["github.com:443", to(good)],
      ["api.github.com:443", to(good)],
      // The good upstream's certificate does not name api.openai.com.
      ["api.openai.com:443", to(good)],
      ["other.test:443", to(good)],
      ["untrusted.test:443", to(rogue)],
      ["notlisted.test:443", to(good)],
    ]),
    helloTimeoutMs: 5000,
  });
  proxyPort = (await proxy.listen(LOOP, 0)).port;
});

afterAll(async () => {
  await proxy?.close();
  await good?.close();
  await rogue?.close();
  rmSync(dir, { recursive: true, force: true });
});

function curl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      "curl",
      ["-sS", "--proxy", `http://${LOOP}:${proxyPort}`, "--max-time", "30", ...args],
      // No proxy variables or CA settings from the test's environment.
      { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir }, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) : 0, stdout: String(stdout), stderr: String(stderr) }),
    );
  });
}

async function auditFor(host: string, count = 1): Promise<AuditEntry[]> {
  for (let i = 0; i < 250; i++) {
    const found = entries.filter((e) => e.host === host);
    if (found.length >= count) return found;
    await Bun.sleep(20);
  }
  throw new Error(`expected ${count} audit entries for ${host}, got ${entries.filter((e) => e.host === host).length}`);
}

/** CONNECT through the proxy, then TLS as a client that trusts `ca`. */
async function openTunnel(host: string, ca: string, alpn: string[] = ["http/1.1"]): Promise<tls.TLSSocket> {
  const raw = netConnect({ host: LOOP, port: proxyPort });
  raw.on("error", () => {});
  await new Promise((r) => raw.once("connect", r));
  raw.write(`CONNECT ${host}:443 HTTP/1.1\r\nHost: ${host}:443\r\n\r\n`);
  const head = await new Promise<string>((resolve) => {
    let got = "";
    const onData = (d: Buffer) => {
      got += d.toString("latin1");
      if (!got.includes("\r\n\r\n")) return;
      raw.off("data", onData);
      resolve(got);
    };
    raw.on("data", onData);
  });
  if (!head.startsWith("HTTP/1.1 200")) throw new Error(head);
  const secure = tls.connect({ socket: raw, servername: host, ca, ALPNProtocols: alpn });
  await new Promise<void>((resolve, reject) => {
    secure.once("secureConnect", () => resolve());
    secure.once("error", reject);
  });
  return secure;
}

function readUntilClosed(s: tls.TLSSocket): Promise<string> {
  return new Promise((resolve) => {
    let text = "";
    s.on("data", (d: Buffer) => (text += d.toString("latin1")));
    s.on("error", () => {});
    s.on("close", () => resolve(text));
  });
}

const noSecrets = (text: string) => {
  for (const secret of [ANTHROPIC_KEY, GITHUB_TOKEN, UNTRUSTED_TOKEN, OPENAI_KEY]) expect(text).not.toContain(secret);
};

describe("a host with a credential rule", () => {
  test("curl with the placeholder: the upstream sees the real key, the client the upstream's answer, the audit no value", async () => {
    const before = good.seen.length;
    const r = await curl(["--cacert", runCaPath, "-H", `x-api-key: ${PLACEHOLDER}`, "-d", '{"model":"x"}', "https://api.anthropic.com/v1/messages?beta=true"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const answer = JSON.parse(r.stdout) as { url: string; host: string; bodyLength: number };
    expect(answer).toMatchObject({ url: "/v1/messages?beta=true", host: "api.anthropic.com", bodyLength: 13 });
    noSecrets(r.stdout);
    const seen = good.seen[before];
    expect(seen?.headers["x-api-key"]).toBe(ANTHROPIC_KEY);
    expect(seen?.method).toBe("POST");

    const event = events.find((e) => e.host === "api.anthropic.com");
    expect(event).toMatchObject({ host: "api.anthropic.com", port: 443, method: "POST", path: "/v1/messages", rule: "anthropic-api-key", client: "placeholder" });
    const [entry] = await auditFor("api.anthropic.com");
    expect(entry).toMatchObject({ method: "CONNECT", host: "api.anthropic.com", port: 443, decision: "allow", reason: "matched api.anthropic.com", sni: "api.anthropic.com", address: LOOP });
    expect(entry?.error).toBeUndefined();
    expect(entry?.bytesUp).toBeGreaterThan(13);
    expect(entry?.bytesDown).toBeGreaterThan(r.stdout.length);
  });

  test("h2 is not offered: a client asking for HTTP/2 gets HTTP/1.1", async () => {
    const r = await curl(["--cacert", runCaPath, "--http2", "-o", "/dev/null", "-w", "%{http_version} %{http_code}", "https://api.anthropic.com/v1/models"]);
    expect(r.stdout).toBe("1.1 200");
    const s = await openTunnel("api.anthropic.com", readFileSync(runCaPath, "utf8"), ["h2", "http/1.1"]);
    expect(s.alpnProtocol).toBe("http/1.1");
    s.destroy();
  });

  test("keep-alive: pipelined requests with length and chunked bodies each get the credential, bodies intact", async () => {
    const before = good.seen.length;
    const s = await openTunnel("api.anthropic.com", readFileSync(runCaPath, "utf8"));
    const done = readUntilClosed(s);
    s.write("GET /first HTTP/1.1\r\nHost: api.anthropic.com\r\n\r\n");
    s.write(`POST /second HTTP/1.1\r\nHost: api.anthropic.com\r\nx-api-key: ${PLACEHOLDER}\r\nContent-Length: 5\r\n\r\nhel`);
    await Bun.sleep(20);
    s.write("lo");
    s.write("POST /third HTTP/1.1\r\nHost: api.anthropic.com\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n");
    await Bun.sleep(20);
    s.write("2\r\nde\r\n0\r\n\r\n");
    const text = await done;
    expect(text.match(/HTTP\/1\.1 200/g)?.length).toBe(3);
    const seen = good.seen.slice(before);
    expect(seen.map((x) => [x.method, x.url, x.headers["x-api-key"], x.bodyLength])).toEqual([
      ["GET", "/first", ANTHROPIC_KEY, 0],
      ["POST", "/second", ANTHROPIC_KEY, 5],
      ["POST", "/third", ANTHROPIC_KEY, 5],
    ]);
    expect(seen[1]?.bodySha).toBe(createHash("sha256").update("hello").digest("hex"));
    expect(seen[2]?.bodySha).toBe(createHash("sha256").update("abcde").digest("hex"));
    expect(events.filter((e) => e.path === "/second" || e.path === "/third").map((e) => e.client)).toEqual(["placeholder", "absent"]);
  });

  test("bodies stream both ways: 8 MiB up, 32 MiB down", async () => {
    const upload = randomBytes(8 << 20);
    const file = join(dir, "upload.bin");
    writeFileSync(file, upload);
    const up = await curl(["--cacert", runCaPath, "--data-binary", `@${file}`, "-H", "content-type: application/octet-stream", "https://api.anthropic.com/upload"]);
    expect(JSON.parse(up.stdout)).toMatchObject({ bodyLength: upload.length, bodySha: createHash("sha256").update(upload).digest("hex") });
    const down = await curl(["--cacert", runCaPath, "-o", "/dev/null", "-w", "%{size_download}", `https://api.anthropic.com/big/${32 << 20}`]);
    expect(down.stdout).toBe(String(32 << 20));
  });

  test("git over https to github.com gets Basic with the token; the API gets Bearer", async () => {
    const before = good.seen.length;
    const git = await curl(["--cacert", runCaPath, "https://github.com/o/r.git/info/refs?service=git-upload-pack"]);
    expect(git.code).toBe(0);
    expect(good.seen[before]?.headers.authorization).toBe(`Basic ${Buffer.from(`x-access-token:${GITHUB_TOKEN}`).toString("base64")}`);
    expect(events.at(-1)).toMatchObject({ host: "github.com", rule: "github-git", client: "absent", path: "/o/r.git/info/refs" });
    const api = await curl(["--cacert", runCaPath, "-H", `authorization: token ${PLACEHOLDER}`, "https://api.github.com/user"]);
    expect(api.code).toBe(0);
    expect(good.seen[before + 1]?.headers.authorization).toBe(`Bearer ${GITHUB_TOKEN}`);
    expect(events.at(-1)).toMatchObject({ host: "api.github.com", rule: "github-api", client: "placeholder" });
  });

  test("a per-request policy refuses before anything is sent", async () => {
    const before = good.seen.length;
    const r = await curl(["--cacert", runCaPath, "-w", "\n%{http_code}", "https://api.anthropic.com/forbidden"]);
    expect(r.stdout).toContain("refused by the test's request policy");
    expect(r.stdout.endsWith("\n403")).toBe(true);
    expect(good.seen.length).toBe(before);
  });

  test("an upgrade (WebSocket) gets the credential, then carries the new protocol both ways", async () => {
    const before = good.seen.length;
    const s = await openTunnel("api.anthropic.com", readFileSync(runCaPath, "utf8"));
    let text = "";
    s.on("data", (d: Buffer) => (text += d.toString("latin1")));
    s.write("GET /ws HTTP/1.1\r\nHost: api.anthropic.com\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n");
    for (let i = 0; i < 100 && !text.includes("\r\n\r\n"); i++) await Bun.sleep(20);
    expect(text.startsWith("HTTP/1.1 101")).toBe(true);
    s.write("ping\r\n\r\nnot-a-request");
    for (let i = 0; i < 100 && !text.includes("not-a-request"); i++) await Bun.sleep(20);
    expect(text).toContain("echo:ping\r\n\r\nnot-a-request");
    expect(good.seen[before]?.headers["x-api-key"]).toBe(ANTHROPIC_KEY);
    s.destroy();
  });

  test("a request naming another Host is refused (421) and never reaches the upstream", async () => {
    const before = good.seen.length;
    const eventsBefore = events.length;
    const auditBefore = entries.filter((e) => e.host === "api.anthropic.com").length;
    const s = await openTunnel("api.anthropic.com", readFileSync(runCaPath, "utf8"));
    const done = readUntilClosed(s);
    s.write("GET / HTTP/1.1\r\nHost: someone-elses-app.example\r\n\r\n");
    const text = await done;
    expect(text).toStartWith("HTTP/1.1 421 Misdirected Request");
    expect(text).toContain("the Host header names someone-elses-app.example, not api.anthropic.com");
    expect(good.seen.length).toBe(before);
    expect(events.length).toBe(eventsBefore);
    const entry = (await auditFor("api.anthropic.com", auditBefore + 1)).at(-1);
    expect(entry?.error).toContain("the Host header names");
  });

  test("an upstream whose certificate does not verify gets nothing: the client reads a 502 saying why", async () => {
    const r = await curl(["--cacert", runCaPath, "-w", "\n%{http_code}", "https://untrusted.test/secret-endpoint"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("untrusted.test:443 did not prove its identity");
    expect(r.stdout).toContain("no credential was sent");
    expect(r.stdout.endsWith("\n502")).toBe(true);
    expect(rogue.seen.length).toBe(0);
    const [entry] = await auditFor("untrusted.test");
    expect(entry?.decision).toBe("allow");
    expect(entry?.error).toStartWith("upstream TLS:");
  });

  test("so does one whose certificate is for another name, from a trusted CA", async () => {
    const before = good.seen.length;
    const r = await curl(["--cacert", runCaPath, "-w", "\n%{http_code}", "https://api.openai.com/v1/models"]);
    expect(r.stdout).toContain("api.openai.com:443 did not prove its identity (ERR_TLS_CERT_ALTNAME_INVALID");
    expect(r.stdout.endsWith("\n502")).toBe(true);
    expect(good.seen.length).toBe(before);
  });

  test("a client that does not trust the run's CA fails its handshake, and the audit says so", async () => {
    const before = good.seen.length;
    const auditBefore = entries.filter((e) => e.host === "github.com").length;
    const r = await curl(["https://github.com/"]);
    expect(r.code).toBe(60); // curl: peer certificate cannot be authenticated
    expect(good.seen.length).toBe(before);
    const entry = (await auditFor("github.com", auditBefore + 1)).at(-1);
    expect(entry?.error).toContain("the client's TLS handshake failed");
  });
});

describe("a host without a credential rule", () => {
  test("is tunnelled, not intercepted: the client sees the upstream's own certificate, the upstream the client's headers", async () => {
    const before = good.seen.length;
    const eventsBefore = events.length;
    const r = await curl(["--cacert", goodCaPath, "-H", `x-api-key: ${PLACEHOLDER}`, "https://other.test/plain"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ url: "/plain", host: "other.test" });
    expect(good.seen[before]?.headers["x-api-key"]).toBe(PLACEHOLDER);
    expect(events.length).toBe(eventsBefore);
    // The run's CA does not vouch for it: the certificate really is the upstream's.
    expect((await curl(["--cacert", runCaPath, "https://other.test/plain"])).code).toBe(60);
  });

  test("an override does not get past the allow-list", async () => {
    const r = await curl(["--cacert", goodCaPath, "https://notlisted.test/"]);
    expect(r.code).not.toBe(0);
    const [entry] = await auditFor("notlisted.test");
    expect(entry).toMatchObject({ decision: "deny", reason: "not on the allow-list" });
  });
});

test("no credential value appears in any injection event or audit entry", async () => {
  await Bun.sleep(100);
  expect(events.length).toBeGreaterThan(5);
  noSecrets(JSON.stringify(events));
  noSecrets(JSON.stringify(entries));
});

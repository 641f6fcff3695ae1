/**
 * Keys never enter the sandbox (issue #15), end to end on Docker: an --egress
 * run with ANTHROPIC_API_KEY set on the host gives the container a
 * placeholder, and the proxy adds the real key to the requests for
 * api.anthropic.com. The "real" api.anthropic.com is a fake HTTPS server on
 * this machine's loopback (certificate from a test CA made with openssl),
 * reached through SANDBOX_EGRESS_UPSTREAMS; the test CA is trusted with
 * --ca-cert. Nothing leaves the machine. Podman refuses --egress
 * (egress.test.ts checks that), so this is Docker only. No root needed:
 * the proxy itself dials the fake server on loopback.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { listNetworks } from "../../src/engine/networks.ts";
import { makeSignedServer } from "../egress/upstream-tls.ts";
import { testEngine } from "../helpers/engine.ts";
import { IS_PODMAN, runSandbox } from "../helpers/sandbox.ts";

const NODE_IMAGE = "sandbox-test/node:22";
const PLACEHOLDER = "sandbox-proxy-managed";
// The value the container must never hold: made here, unique per test run.
const SECRET = `sk-ant-test-${randomBytes(12).toString("hex")}`;
const ANSWER = `upstream-answer-${randomBytes(4).toString("hex")}`;

const work = mkdtempSync(join(tmpdir(), "sandbox-cred-"));
const records = mkdtempSync(join(tmpdir(), "sandbox-cred-host-"));
const auditFile = join(records, "audit.jsonl");
const caFile = join(records, "test-ca.pem");
const ours = `io.sandbox.workspace=${work}`;

/** A CONNECT client (node's https has no proxy support): POSTs to https://HOST/PATH through $HTTPS_PROXY, prints `label: status body`. */
const CLIENT = `
const http = require("node:http"), https = require("node:https"), tls = require("node:tls");
const proxy = new URL(process.env.HTTPS_PROXY);
function post(host, path, headers) {
  return new Promise((resolve, reject) => {
    const c = http.request({ host: proxy.hostname, port: proxy.port, method: "CONNECT", path: host + ":443", headers: { host: host + ":443" } });
    c.on("connect", (res, socket) => {
      if (res.statusCode !== 200) return reject(new Error("CONNECT answered " + res.statusCode));
      const r = https.request(
        { host, port: 443, defaultPort: 443, path, method: "POST", headers: { ...headers, "content-type": "application/json" }, createConnection: () => tls.connect({ socket, servername: host }) },
        (resp) => { let b = ""; resp.on("data", (d) => (b += d)); resp.on("end", () => resolve(resp.statusCode + " " + b)); },
      );
      r.on("error", reject);
      r.end(JSON.stringify({ model: "test", messages: [] }));
    });
    c.on("error", reject);
    c.end();
  });
}
(async () => {
  console.log("anthropic: " + (await post("api.anthropic.com", "/v1/messages?beta=true", { "x-api-key": process.env.ANTHROPIC_API_KEY, "anthropic-version": "2023-06-01" })));
  console.log("plain: " + (await post("plain.test", "/other", { "x-api-key": process.env.ANTHROPIC_API_KEY })));
  console.log("env-value: " + process.env.ANTHROPIC_API_KEY);
})().catch((e) => { console.log("client-error: " + e.message); process.exit(3); });
`;

/**
 * Inside: the client, then a search for the real value in the environment,
 * every process's environ and the writable folders. The value reaches the
 * script base64-encoded (so it is in no create body or command line) and is
 * decoded into an unexported shell variable.
 */
const CHECK = [
  "node /work/client.js || exit $?",
  `v=$(node -e 'process.stdout.write(Buffer.from(process.argv[1], "base64").toString())' ${Buffer.from(SECRET).toString("base64")})`,
  'echo "secret-length=${#v}"',
  'if env | grep -qF "$v"; then echo LEAK-ENV; else echo CLEAN-ENV; fi',
  'if cat /proc/*/environ 2>/dev/null | grep -qaF "$v"; then echo LEAK-PROC; else echo CLEAN-PROC; fi',
  'if grep -rqsaF "$v" /work /tmp /home /etc/sandbox; then echo LEAK-FILES; else echo CLEAN-FILES; fi',
].join("\n");

interface Seen {
  servername: string | undefined;
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
}

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
  rmSync(records, { recursive: true, force: true });
});

describe.skipIf(IS_PODMAN)("credentials added by the egress proxy (Docker)", () => {
  let server: Server | undefined;
  let port = 0;
  const seen: Seen[] = [];

  beforeAll(async () => {
    const tls = makeSignedServer(["api.anthropic.com", "plain.test"], "sandbox credentials test CA");
    writeFileSync(caFile, tls.caPem);
    writeFileSync(join(work, "client.js"), CLIENT);
    server = createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
      const servername = (req.socket as unknown as { servername?: string }).servername;
      req.resume();
      req.on("end", () => {
        seen.push({ servername, method: req.method ?? "", url: req.url ?? "", headers: { ...req.headers } });
        res.writeHead(200, { "content-type": "text/plain" });
        res.end(`${ANSWER} for ${req.headers.host}`);
      });
    });
    await new Promise<void>((ready) => server?.listen(0, "127.0.0.1", () => ready()));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise<void>((done) => (server ? server.close(() => done()) : done()));
  });

  const env = () => ({
    ANTHROPIC_API_KEY: SECRET,
    // The run's CA bundle is written under it, and must be gone afterwards.
    XDG_STATE_HOME: join(records, "state"),
    SANDBOX_EGRESS_UPSTREAMS: `api.anthropic.com:443=127.0.0.1:${port},plain.test:443=127.0.0.1:${port}`,
  });
  const args = () => ["run", "--image", NODE_IMAGE, "--egress", "api.anthropic.com,plain.test", "--ca-cert", caFile];

  test("the upstream gets the real key, the container only a placeholder, the audit the request", async () => {
    const r = await runSandbox([...args(), "--audit", auditFile, "sh", "-c", CHECK], { cwd: work, env: env(), timeoutMs: 110_000 });
    const out = r.stdout.toString();
    if (r.code !== 0) console.error(r.stderr, out);
    expect(r.code).toBe(0);

    // The container saw the upstream's answers, and only the placeholder.
    expect(out).toContain(`anthropic: 200 ${ANSWER} for api.anthropic.com`);
    expect(out).toContain(`plain: 200 ${ANSWER} for plain.test`);
    expect(out).toContain(`env-value: ${PLACEHOLDER}\n`);
    expect(out).toContain(`secret-length=${SECRET.length}\n`);
    for (const marker of ["CLEAN-ENV", "CLEAN-PROC", "CLEAN-FILES"]) expect(out).toContain(marker);
    expect(out).not.toContain("LEAK-");
    expect(out).not.toContain(SECRET);

    // The fake api.anthropic.com got the real key, once, in x-api-key; plain.test (no rule) what the client sent.
    const anthropic = seen.filter((s) => s.headers.host === "api.anthropic.com");
    expect(anthropic).toHaveLength(1);
    expect(anthropic[0]?.servername).toBe("api.anthropic.com");
    expect(anthropic[0]?.method).toBe("POST");
    expect(anthropic[0]?.url).toBe("/v1/messages?beta=true");
    expect(anthropic[0]?.headers["x-api-key"]).toBe(SECRET);
    expect(anthropic[0]?.headers["anthropic-version"]).toBe("2023-06-01");
    const plain = seen.filter((s) => s.headers.host === "plain.test");
    expect(plain).toHaveLength(1);
    expect(plain[0]?.headers["x-api-key"]).toBe(PLACEHOLDER);
    expect(JSON.stringify(plain[0]?.headers)).not.toContain(SECRET);

    // One line says which rule is active; no message carries the value.
    expect(r.stderr).toContain(
      "sandbox: credentials: ANTHROPIC_API_KEY is added by the proxy for api.anthropic.com (rule anthropic-api-key; the container sees a placeholder in ANTHROPIC_API_KEY)",
    );
    expect(r.stderr).not.toContain(SECRET);

    // The audit: the request, by names; the value nowhere.
    const text = readFileSync(auditFile, "utf8");
    expect(text).not.toContain(SECRET);
    const lines = text.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    const injected = lines.filter((l) => l.kind === "credential");
    expect(injected).toHaveLength(1);
    expect(injected[0]).toMatchObject({ kind: "credential", host: "api.anthropic.com", port: 443, method: "POST", path: "/v1/messages", rule: "anthropic-api-key", client: "placeholder" });
    expect(typeof injected[0]?.time).toBe("string");
    const tunnels = lines.filter((l) => l.kind === undefined && l.method === "CONNECT");
    expect(tunnels.map((l) => l.host).sort()).toEqual(["api.anthropic.com", "plain.test"]);
    expect(tunnels.every((l) => l.decision === "allow")).toBe(true);

    // Nothing of the run is left: its network and its CA bundle.
    expect((await listNetworks(await testEngine(), { labels: ["io.sandbox.managed=true", ours] })).map((n) => n.Name)).toEqual([]);
    const bundles = join(records, "state/sandbox/ca");
    expect(existsSync(bundles) ? readdirSync(bundles) : []).toEqual([]);
  }, 120_000);

  test("--dry-run shows the placeholder and the rule, never the value; --quiet hides the line", async () => {
    const r = await runSandbox([...args(), "--dry-run", "sh", "-c", CHECK], { cwd: work, env: env() });
    expect(r.code).toBe(0);
    const out = r.stdout.toString();
    expect(out).not.toContain(SECRET);
    expect(r.stderr).not.toContain(SECRET);
    const view = JSON.parse(out) as { create: { Env: string[] }; security: { egress: { credentials: unknown[] } } };
    expect(view.create.Env).toContain(`ANTHROPIC_API_KEY=${PLACEHOLDER}`);
    expect(view.security.egress.credentials).toEqual([
      { rule: "anthropic-api-key", hosts: ["api.anthropic.com"], header: "x-api-key", from: "$ANTHROPIC_API_KEY", placeholders: ["ANTHROPIC_API_KEY"] },
    ]);
    expect(r.stderr).toContain("credentials: ANTHROPIC_API_KEY is added by the proxy for api.anthropic.com");

    const quiet = await runSandbox([...args(), "--dry-run", "-q", "sh"], { cwd: work, env: env() });
    expect(quiet.code).toBe(0);
    expect(quiet.stderr).not.toContain("credentials:");
  }, 60_000);

  test("--env ANTHROPIC_API_KEY passes the value raw, with a warning, and the proxy adds nothing (the leak check's control)", async () => {
    const dry = await runSandbox([...args(), "--dry-run", "--env", "ANTHROPIC_API_KEY", "sh"], { cwd: work, env: env() });
    expect(dry.code).toBe(0);
    const warning =
      "sandbox: warning: ANTHROPIC_API_KEY is passed into the container as you asked (--env or config), so the real value is inside it; without that, the egress proxy would add it for api.anthropic.com (credential rule anthropic-api-key)";
    expect(dry.stderr).toContain(warning);
    expect(dry.stderr).not.toContain("credentials: ANTHROPIC_API_KEY is added");
    const view = JSON.parse(dry.stdout.toString()) as { create: { Env: string[] }; security: { egress: { credentials: unknown[] } } };
    expect(view.security.egress.credentials).toEqual([]);
    expect(view.create.Env).not.toContain(`ANTHROPIC_API_KEY=${PLACEHOLDER}`);
    // Forwarded on request, it is a secret: --dry-run masks it.
    expect(dry.stdout.toString()).not.toContain(SECRET);

    // For real: the same search inside now finds the value, and the client itself sends it.
    seen.length = 0;
    const r = await runSandbox([...args(), "--audit", auditFile, "--env", "ANTHROPIC_API_KEY", "sh", "-c", CHECK], { cwd: work, env: env(), timeoutMs: 110_000 });
    const out = r.stdout.toString();
    if (r.code !== 0) console.error(r.stderr, out);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(warning);
    expect(out).toContain("LEAK-ENV");
    expect(out).toContain("LEAK-PROC");
    expect(seen.find((s) => s.headers.host === "api.anthropic.com")?.headers["x-api-key"]).toBe(SECRET);
    expect(readFileSync(auditFile, "utf8")).not.toContain('"kind":"credential"');
  }, 120_000);

  test("a host outside the allow-list gets no rule: no placeholder, no CA", async () => {
    const r = await runSandbox(["run", "--image", NODE_IMAGE, "--egress", "plain.test", "--dry-run", "sh"], { cwd: work, env: env() });
    expect(r.code).toBe(0);
    const view = JSON.parse(r.stdout.toString()) as { create: { Env: string[] }; security: { egress: { credentials: unknown[] } } };
    expect(view.security.egress.credentials).toEqual([]);
    expect(view.create.Env.some((e) => e.startsWith("ANTHROPIC_API_KEY="))).toBe(false);
    expect(view.create.Env.some((e) => e.startsWith("SSL_CERT_FILE="))).toBe(false);
    expect(r.stderr).not.toContain("credentials:");
  }, 60_000);
});

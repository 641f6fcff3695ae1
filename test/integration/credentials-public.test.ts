/**
 * A credential rule of the user's own config in public mode (issue #15):
 * writing it is the opt-in, so `--network public` (and an agent's default
 * public mode) intercepts its host and adds the value like the agent's own
 * key, with no `--egress` naming the host. A built-in rule that is not the
 * agent's (GitHub's) still needs its host named: its tunnel is relayed and
 * gets nothing. The hosts are a fake HTTPS server on loopback (a test CA's
 * certificate, trusted with --ca-cert), reached through
 * SANDBOX_EGRESS_UPSTREAMS; nothing leaves the machine. Docker only: the
 * proxy does not run on Podman (egress.test.ts checks the refusal).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeSignedServer } from "../egress/upstream-tls.ts";
import { IS_PODMAN, runSandbox } from "../helpers/sandbox.ts";

const NODE_IMAGE = "sandbox-test/node:22";
const PLACEHOLDER = "sandbox-proxy-managed";
const CORP_SECRET = `corp-${randomBytes(12).toString("hex")}`;
const GH_SECRET = `ghp_${randomBytes(12).toString("hex")}`;

const work = mkdtempSync(join(tmpdir(), "sandbox-cred-public-"));
const records = mkdtempSync(join(tmpdir(), "sandbox-cred-public-host-"));
const caFile = join(records, "test-ca.pem");
const xdgConfig = join(records, "xdg");

/** GETs https://HOST/who through $HTTPS_PROXY with `authorization: Bearer $VAR`, prints `HOST: status body`. */
const CLIENT = `
const http = require("node:http"), https = require("node:https"), tls = require("node:tls");
const proxy = new URL(process.env.HTTPS_PROXY);
function get(host, token) {
  return new Promise((resolve, reject) => {
    const c = http.request({ host: proxy.hostname, port: proxy.port, method: "CONNECT", path: host + ":443", headers: { host: host + ":443" } });
    c.on("connect", (res, socket) => {
      if (res.statusCode !== 200) return reject(new Error("CONNECT answered " + res.statusCode));
      const r = https.request({ host, port: 443, path: "/who", headers: { authorization: "Bearer " + token }, createConnection: () => tls.connect({ socket, servername: host }) }, (resp) => {
        let b = ""; resp.on("data", (d) => (b += d)); resp.on("end", () => resolve(resp.statusCode + " " + b));
      });
      r.on("error", reject);
      r.end();
    });
    c.on("error", reject);
    c.end();
  });
}
(async () => {
  console.log("corp: " + (await get("api.corp.example", process.env.CORP_TOKEN)));
  console.log("github: " + (await get("api.github.com", process.env.GH_TOKEN)));
  console.log("CORP_TOKEN=" + process.env.CORP_TOKEN);
})().catch((e) => { console.log("client-error: " + e.message); process.exit(3); });
`;

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
  rmSync(records, { recursive: true, force: true });
});

describe.skipIf(IS_PODMAN)("your own credential rules in public mode (Docker)", () => {
  let server: Server | undefined;
  let port = 0;
  const seen: Array<{ host: string | undefined; authorization: string | undefined }> = [];

  beforeAll(async () => {
    const tls = makeSignedServer(["api.corp.example", "api.github.com"], "sandbox public credentials test CA");
    writeFileSync(caFile, tls.caPem);
    writeFileSync(join(work, "client.js"), CLIENT);
    mkdirSync(join(xdgConfig, "sandbox"), { recursive: true });
    writeFileSync(
      join(xdgConfig, "sandbox", "config.yaml"),
      ["credentials:", "  - name: corp-api", "    hosts: api.corp.example", "    header: authorization", '    format: "Bearer {value}"', "    env: CORP_TOKEN", ""].join("\n"),
    );
    server = createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
      seen.push({ host: req.headers.host?.replace(/:443$/, ""), authorization: req.headers.authorization });
      res.end(`seen by ${req.headers.host}`);
    });
    await new Promise<void>((ready) => server?.listen(0, "127.0.0.1", () => ready()));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise<void>((done) => (server ? server.close(() => done()) : done()));
  });

  test("--network public: the rule's host gets the value, the container a placeholder; GitHub's token is not added unasked", async () => {
    const r = await runSandbox(["run", "--image", NODE_IMAGE, "--network", "public", "--ca-cert", caFile, "node", "/work/client.js"], {
      cwd: work,
      env: {
        XDG_CONFIG_HOME: xdgConfig,
        XDG_STATE_HOME: join(records, "state"),
        CORP_TOKEN: CORP_SECRET,
        GH_TOKEN: GH_SECRET,
        SANDBOX_EGRESS_UPSTREAMS: `api.corp.example:443=127.0.0.1:${port},api.github.com:443=127.0.0.1:${port}`,
      },
      timeoutMs: 110_000,
    });
    const out = r.stdout.toString();
    if (r.code !== 0) console.error(r.stderr, out);
    expect(r.code).toBe(0);
    expect(out).toContain("corp: 200 seen by api.corp.example");
    expect(out).toContain("github: 200 seen by api.github.com");
    expect(out).toContain(`CORP_TOKEN=${PLACEHOLDER}\n`);

    expect(seen.find((s) => s.host === "api.corp.example")?.authorization).toBe(`Bearer ${CORP_SECRET}`);
    // Relayed untouched: the client had no GitHub token to send (GH_TOKEN is never forwarded), and the proxy added none.
    expect(seen.find((s) => s.host === "api.github.com")?.authorization).toBe("Bearer undefined");
    expect(r.stderr).toContain("sandbox: credentials: CORP_TOKEN is added by the proxy for api.corp.example (rule corp-api; the container sees a placeholder in CORP_TOKEN)");
    expect(r.stderr).not.toContain("rule github-api");
    expect(`${out}${r.stderr}`).not.toContain(CORP_SECRET);
    expect(`${out}${r.stderr}`).not.toContain(GH_SECRET);
  }, 120_000);
});

/**
 * Security review of the credential proxy (issue #15): attacks from inside
 * the container (and one from beside it) that get the real key out. Each
 * test FAILS on the reviewed code and passes once the fix named in its
 * comment is in. Same set-up as credentials.test.ts: a fake HTTPS
 * api.anthropic.com on loopback (test CA via openssl, --ca-cert), reached
 * through SANDBOX_EGRESS_UPSTREAMS. Docker only; nothing leaves the machine.
 *
 * The fake upstream is an ordinary node:https server. For TRACE it does what
 * RFC 9110 §9.3.8 says a server does (and what Apache httpd does by default,
 * TraceEnable on): it returns the request it received, headers included.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import { connect as netConnect, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { makeSignedServer } from "../egress/upstream-tls.ts";
import { IS_PODMAN, runSandbox } from "../helpers/sandbox.ts";

const NODE_IMAGE = "sandbox-test/node:22";
const SECRET = `sk-ant-review-${randomBytes(12).toString("hex")}`;

const work = mkdtempSync(join(tmpdir(), "sandbox-cred-review-"));
const records = mkdtempSync(join(tmpdir(), "sandbox-cred-review-host-"));
const caFile = join(records, "test-ca.pem");

/**
 * Inside: raw requests through a CONNECT tunnel (the run's CA trusted via
 * NODE_EXTRA_CA_CERTS), each answer printed as `[label] <json string>`.
 */
const CLIENT = `
const net = require("node:net"), tls = require("node:tls");
const proxy = new URL(process.env.HTTPS_PROXY);
function tunnel(host) {
  return new Promise((resolve) => {
    const s = net.connect(Number(proxy.port), proxy.hostname, () => s.write("CONNECT " + host + ":443 HTTP/1.1\\r\\nHost: " + host + ":443\\r\\n\\r\\n"));
    let head = "";
    const onData = (d) => {
      head += d.toString("latin1");
      if (!head.includes("\\r\\n\\r\\n")) return;
      s.off("data", onData);
      if (!head.startsWith("HTTP/1.1 200")) return resolve(undefined);
      const t = tls.connect({ socket: s, servername: host, ALPNProtocols: ["http/1.1"] });
      t.on("secureConnect", () => resolve(t));
      t.on("error", () => resolve(undefined));
    };
    s.on("data", onData);
    s.on("error", () => resolve(undefined));
  });
}
async function raw(label, host, parts) {
  const t = await tunnel(host);
  if (!t) return console.log("[" + label + "] " + JSON.stringify("no tunnel"));
  let out = "";
  t.on("data", (d) => (out += d.toString("latin1")));
  t.on("error", () => {});
  for (const p of parts) { t.write(Buffer.from(p, "latin1")); await new Promise((z) => setTimeout(z, 150)); }
  await new Promise((z) => { t.on("close", z); setTimeout(z, 2000); });
  t.destroy();
  console.log("[" + label + "] " + JSON.stringify(out));
}
const A = "api.anthropic.com";
const follow = "GET /second HTTP/1.1\\r\\nHost: " + A + "\\r\\nConnection: close\\r\\n\\r\\n";
const group = process.argv[2];
(async () => {
  if (group === "trace") {
  await raw("trace", A, ["TRACE / HTTP/1.1\\r\\nHost: " + A + "\\r\\nx-api-key: " + process.env.ANTHROPIC_API_KEY + "\\r\\nConnection: close\\r\\n\\r\\n"]);
  await raw("track", A, ["TRACK / HTTP/1.1\\r\\nHost: " + A + "\\r\\nConnection: close\\r\\n\\r\\n"]);
  return;
  }
  // Framing the proxy reads one way and forwards as written (its parser trims more than SP/HTAB,
  // and takes a bare LF as a chunk line's end): a server that reads it another way desyncs.
  await raw("te-nbsp", A, ["POST /first HTTP/1.1\\r\\nHost: " + A + "\\r\\nTransfer-Encoding: chunked\\xa0\\r\\n\\r\\n5\\r\\nhello\\r\\n0\\r\\n\\r\\n", follow]);
  await raw("te-vtab", A, ["POST /first HTTP/1.1\\r\\nHost: " + A + "\\r\\nTransfer-Encoding: \\x0bchunked\\r\\n\\r\\n5\\r\\nhello\\r\\n0\\r\\n\\r\\n", follow]);
  await raw("cl-nbsp", A, ["POST /first HTTP/1.1\\r\\nHost: " + A + "\\r\\nContent-Length: 5\\xa0\\r\\n\\r\\nhello", follow]);
  await raw("chunk-bare-lf", A, ["POST /first HTTP/1.1\\r\\nHost: " + A + "\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n5\\nhello\\r\\n0\\n\\n", follow]);
})().catch((e) => { console.log("client-error: " + e.message); process.exit(3); });
`;

interface Seen {
  method: string;
  url: string;
  rawHeaders: string[];
}

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
  rmSync(records, { recursive: true, force: true });
});

/** `[label] "..."` lines → label → the answer the client read. */
function answers(out: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of out.split("\n")) {
    const m = /^\[([a-z-]+)\] (".*")$/.exec(line);
    if (m?.[1] && m[2]) map.set(m[1], JSON.parse(m[2]) as string);
  }
  return map;
}

describe.skipIf(IS_PODMAN)("credential proxy review: ways the key gets out (Docker)", () => {
  let server: Server | undefined;
  let port = 0;
  const seen: Seen[] = [];

  beforeAll(async () => {
    const tls = makeSignedServer(["api.anthropic.com"], "sandbox credentials review CA");
    writeFileSync(caFile, tls.caPem);
    writeFileSync(join(work, "client.js"), CLIENT);
    server = createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
      req.resume();
      req.on("end", () => {
        seen.push({ method: req.method ?? "", url: req.url ?? "", rawHeaders: [...req.rawHeaders] });
        if (req.method === "TRACE" || req.method === "TRACK") {
          // RFC 9110 §9.3.8: the request as received, as the body.
          let echo = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
          for (let i = 0; i < req.rawHeaders.length; i += 2) echo += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
          res.writeHead(200, { "content-type": "message/http" });
          res.end(`${echo}\r\n`);
          return;
        }
        res.writeHead(200, { "content-type": "text/plain" });
        res.end(`ok ${req.method} ${req.url}\n`);
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
    XDG_STATE_HOME: join(records, "state"),
    SANDBOX_EGRESS_UPSTREAMS: `api.anthropic.com:443=127.0.0.1:${port}`,
  });
  const args = () => ["run", "--image", NODE_IMAGE, "--egress", "api.anthropic.com", "--ca-cert", caFile];

  test("inside the container: TRACE/TRACK never echo the key (the proxy refuses them in a tunnel it adds a credential to)", async () => {
    seen.length = 0;
    const r = await runSandbox([...args(), "node", "/work/client.js", "trace"], { cwd: work, env: env(), timeoutMs: 110_000 });
    const out = r.stdout.toString();
    if (r.code !== 0) console.error(r.stderr, out);
    expect(r.code).toBe(0);
    const got = answers(out);

    // ATTACK 1 (works today): TRACE in the intercepted tunnel gets the key added, and a server that
    // implements TRACE sends the request back, key included.
    // FIX: src/egress/inject.ts, tunnelRequestProblem(): refuse TRACE and TRACK (e.g. `if (head.method
    // === "TRACE" || head.method === "TRACK") return { status: 405, why: "TRACE/TRACK would echo the
    // credential" }`; add 405 "Method Not Allowed" to request-relay.ts errorResponse's texts).
    expect(out).not.toContain(SECRET);
    for (const label of ["trace", "track"]) {
      expect(got.get(label) ?? "").toContain("X-Sandbox-Egress: denied");
    }
    expect(seen.filter((s) => s.method === "TRACE" || s.method === "TRACK")).toEqual([]);
  }, 120_000);

  test("inside the container: framing the proxy reads differently from the bytes it forwards is refused, never forwarded with the key (hardening)", async () => {
    seen.length = 0;
    const r = await runSandbox([...args(), "node", "/work/client.js", "framing"], { cwd: work, env: env(), timeoutMs: 110_000 });
    const out = r.stdout.toString();
    if (r.code !== 0) console.error(r.stderr, out);
    expect(r.code).toBe(0);
    const got = answers(out);
    expect(out).not.toContain(SECRET);

    // ATTACK 2 (hardening, no leak against Node's parser, which rejects these with its own 400):
    // the proxy accepts and forwards, key added, framing it reads differently from the raw bytes
    // it sends on. Any upstream whose parser disagrees reads the next request's head (with the key)
    // as a body, or a smuggled request out of this one's body.
    // FIX: src/egress/http1.ts: requestFraming(): compare Transfer-Encoding/Content-Length values
    // after trimming SP/HTAB only (not String.prototype.trim, which also strips \v, \f, U+00A0…),
    // and refuse any value with a byte outside VCHAR/SP/HTAB; parseHead(): refuse control bytes
    // (0x00-0x1f except HTAB, 0x7f) in every header value, not only \0\r\n; ChunkedTracker.feed():
    // require CRLF (refuse a bare LF) in chunk-size and trailer lines, like Node's llhttp does.
    // Head-level problems are answered by the proxy; a body-level one (the head, key included, is
    // on its way by then) can only cut both connections: no answer at all, never the server's.
    for (const label of ["te-nbsp", "te-vtab", "cl-nbsp"]) {
      expect({ label, answer: got.get(label) ?? "" }).toEqual({ label, answer: expect.stringContaining("X-Sandbox-Egress: denied") });
    }
    const bareLf = got.get("chunk-bare-lf") ?? "";
    expect(bareLf === "" || bareLf.includes("X-Sandbox-Egress: denied")).toBe(true);
    expect(seen.filter((s) => s.url === "/first")).toEqual([]);
  }, 120_000);

  test("beside the container: a process of this machine cannot use the run's proxy to have the key added", async () => {
    // ATTACK 3 (works today): the proxy accepts any client whose address is in the run's subnet, and
    // a process on the host that dials the gateway address comes FROM the gateway address (in that
    // subnet). Any local user (or a --network host container) gets the key added to its requests
    // for the run's lifetime; with an echoing endpoint, reads it (the concern intercept.ts gives for
    // rejecting a loopback TLS server applies to the gateway listener too).
    // FIX: src/egress/proxy.ts, EgressProxy.handle(): when `clients` is set, also refuse a peer whose
    // address equals the socket's own local address (client.localAddress: the gateway, this machine)
    // (tested: /tmp/review-tests/suggested-fixes.diff). Not `options.localAddresses`: it is filled by
    // os.networkInterfaces() before any container is attached, when libuv still skips the new bridge
    // (not IFF_RUNNING), so the gateway is not in it. Better still, pin `clients` to the container's
    // own address once it is created.
    // The container tells where its proxy is (the workspace is the host's folder).
    const run = runSandbox([...args(), "sh", "-c", 'echo "$HTTPS_PROXY" > /work/proxy.txt; sleep 20'], { cwd: work, env: env(), timeoutMs: 60_000 });
    let proxyUrl: URL | undefined;
    for (let i = 0; i < 120 && proxyUrl === undefined; i++) {
      const text = existsSync(join(work, "proxy.txt")) ? readFileSync(join(work, "proxy.txt"), "utf8").trim() : "";
      if (text.startsWith("http://")) proxyUrl = new URL(text);
      else await new Promise((z) => setTimeout(z, 250));
    }
    expect(proxyUrl).toBeDefined();
    const gateway = proxyUrl?.hostname as string;
    const proxyPort = Number(proxyUrl?.port);
    seen.length = 0;
    const answer = await new Promise<string>((resolve) => {
      const s = netConnect(proxyPort, gateway, () => s.write("CONNECT api.anthropic.com:443 HTTP/1.1\r\nHost: api.anthropic.com:443\r\n\r\n"));
      let tunnelled = false;
      s.on("error", () => resolve("refused"));
      s.on("close", () => { if (!tunnelled) resolve("closed"); });
      s.once("data", (d) => {
        tunnelled = true;
        if (!d.toString("latin1").startsWith("HTTP/1.1 200")) return resolve(d.toString("latin1"));
        const t = tlsConnect({ socket: s, servername: "api.anthropic.com", rejectUnauthorized: false }, () =>
          t.write("GET /from-the-host HTTP/1.1\r\nHost: api.anthropic.com\r\nConnection: close\r\n\r\n"),
        );
        let body = "";
        t.on("data", (x: Buffer) => (body += x.toString("latin1")));
        t.on("error", () => resolve(body || "tls error"));
        t.on("close", () => resolve(body));
      });
      setTimeout(() => resolve("timeout"), 10_000);
    });
    const r = await run;
    expect(r.code).toBe(0);
    // Today the upstream gets GET /from-the-host with x-api-key set to the real key.
    expect(answer).not.toContain(SECRET);
    expect(seen.filter((s) => s.url === "/from-the-host" && s.rawHeaders.includes(SECRET))).toEqual([]);
  }, 90_000);
});

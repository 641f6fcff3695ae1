/**
 * Egress proxy benchmark, printed as figures (no assertions):
 *
 *  1. Inside a container (busybox wget, plain HTTP, from busybox httpd): a
 *     BENCH_EGRESS_MB (256) MiB download direct (`--network <server
 *     network>`) vs through the proxy (`--egress`), the median of
 *     BENCH_EGRESS_RUNS (7) each (a single 256 MiB transfer over loopback
 *     takes 0.1-0.3 s and varies a lot, so a best-of picks outliers); and the
 *     added time per connection over 50 small requests.
 *     The same download through an allow-all list (`--egress 'IP,*'`: any
 *     name, the server's private address opted in; what public mode is) is
 *     the third figure.
 *  2. From the host (TLS through CONNECT, which busybox cannot do), with an
 *     EgressProxy in a separate process, three paths to the same server:
 *     direct, a plain CONNECT tunnel (bench.test, relayed untouched), and an
 *     intercepted tunnel (inject.test: the proxy ends TLS and adds a
 *     credential to each request, intercept.ts). For each: the download's
 *     throughput; the time per new connection (TCP + CONNECT + TLS handshake
 *     + one small request, 200 sequential); and the time per small request
 *     on one kept-alive connection (500 sequential), the cost injection adds
 *     to every request.
 *
 * The server runs in a helper container's network namespace (as in
 * test/integration/egress.test.ts), so nothing leaves the machine. Needs
 * root (nsenter) and a local Docker engine.
 *
 *   bun scripts/bench-egress.ts
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Secret } from "../src/core/secret.ts";
import { parseAllowList } from "../src/egress/allowlist.ts";
import { AuditLog } from "../src/egress/audit.ts";
import { CredentialInterceptor } from "../src/egress/intercept.ts";
import { EgressProxy } from "../src/egress/proxy.ts";
import { tableResolver } from "../src/egress/resolve.ts";
import { RunCa } from "../src/egress/run-ca.ts";
import { createContainer, inspectContainer, removeContainer, startContainer } from "../src/engine/containers.ts";
import { createNetwork, removeNetwork } from "../src/engine/networks.ts";
import { testEngine } from "../test/helpers/engine.ts";
import { makeCert } from "../test/egress/fixtures.ts";

const ROOT = resolve(import.meta.dir, "..");
const IMAGE = process.env.SANDBOX_TEST_IMAGE ?? "sandbox-test/busybox:1";
const MB = Number(process.env.BENCH_EGRESS_MB ?? 256);
const RUNS = Number(process.env.BENCH_EGRESS_RUNS ?? 7);
const BYTES = MB * 1024 * 1024;
const BIN = process.env.SANDBOX_BIN ?? resolve(ROOT, "dist/sandbox");

// --- child mode: just the proxy, in its own process like in a real run -------------
if (process.argv[2] === "proxy-child") {
  const [, , , serverIp = "", certPath = ""] = process.argv;
  const allow = parseAllowList(["bench.test", "inject.test", serverIp]);
  if (!allow.ok) throw new Error(allow.error);
  // inject.test has a credential rule: its tunnels are intercepted; bench.test's are relayed.
  const ca = RunCa.create({ lifetimeMs: 3_600_000, permittedNames: ["inject.test"], label: "bench" });
  const rule = { name: "bench", hosts: ["inject.test"], header: "authorization", format: { kind: "template", template: "Bearer {value}" }, sources: [{ env: "BENCH_TOKEN" }], placeholders: [] } as const;
  const intercept = new CredentialInterceptor({ ca, credentials: [{ rule, value: new Secret("bench-token-value"), from: "$BENCH_TOKEN" }], upstreamCa: [readFileSync(certPath, "utf8")] });
  const proxy = new EgressProxy({
    allow: allow.value,
    audit: new AuditLog(),
    resolve: tableResolver(new Map([["bench.test", [serverIp]], ["inject.test", [serverIp]]])),
    intercept,
  });
  const { port } = await proxy.listen("127.0.0.1", 0);
  process.stdout.write(`${JSON.stringify({ port, ca: ca.certificatePem })}\n`);
  process.stdin.resume();
  process.stdin.on("end", () => process.exit(0));
} else {
  await main();
}

async function main(): Promise<void> {
  if (!existsSync(BIN)) spawnSync(process.execPath, [resolve(ROOT, "scripts/build.ts")], { cwd: ROOT, stdio: "inherit" });
  const engine = await testEngine();
  const tag = Math.random().toString(16).slice(2, 10);
  const net = `sandbox-bench-egress-${tag}`;
  const work = mkdtempSync(join(tmpdir(), "sandbox-bench-egress-"));
  let helper: string | undefined;
  const children: Array<ReturnType<typeof spawn>> = [];
  try {
    await createNetwork(engine, { name: net, internal: true, labels: { "io.sandbox.test": "bench" } });
    // busybox httpd (sendfile) serves the plain-HTTP download, so the server is not the bottleneck.
    const www = `mkdir -p /tmp/www && dd if=/dev/zero of=/tmp/www/blob bs=1048576 count=${MB} 2>/dev/null && echo hello > /tmp/www/hello && exec httpd -f -p 8080 -h /tmp/www`;
    helper = await createContainer(engine, `${net}-ns`, {
      Image: IMAGE,
      Cmd: ["sh", "-c", www],
      HostConfig: { NetworkMode: net, Init: true, Tmpfs: { "/tmp": `size=${MB + 16}m` } },
    });
    await startContainer(engine, helper);
    const d = (await inspectContainer(engine, helper)) as unknown as { State: { Pid: number }; NetworkSettings: { Networks: Record<string, { IPAddress: string }> } };
    const ip = d.NetworkSettings.Networks[net]?.IPAddress ?? "";
    const tls = makeCert(["bench.test", "inject.test"]);
    writeFileSync(join(work, "key.pem"), tls.key);
    writeFileSync(join(work, "cert.pem"), tls.cert);
    writeFileSync(join(work, "hosts"), `${ip} bench.test inject.test\n`);

    const server = spawn("nsenter", ["-t", String(d.State.Pid), "-n", "--", process.execPath, resolve(ROOT, "test/egress/server-main.ts")], {
      env: { ...process.env, TLS_KEY: join(work, "key.pem"), TLS_CERT: join(work, "cert.pem") },
      stdio: ["pipe", "pipe", "inherit"],
    });
    children.push(server);
    const ports = await firstJsonLine<{ httpPort: number; httpsPort: number }>(server);
    server.stdout?.resume();
    await waitForPort(ip, 8080);

    console.log(`egress benchmark: ${MB} MiB, median of ${RUNS}; server ${ip} (in a helper container's network namespace)\n`);

    // 1. Inside a container, plain HTTP with busybox wget.
    const loop = (url: string) =>
      [
        `for i in $(seq ${RUNS}); do time wget -q -O /dev/null ${url}/blob; done`,
        `time sh -c 'for i in $(seq 50); do wget -q -O /dev/null ${url}/hello; done'`,
      ].join("\n");
    const direct = sandboxRun(["--network", net], loop(`http://${ip}:8080`), work);
    const proxied = sandboxRun(["--egress", `bench.test,${ip}`], loop(`http://bench.test:8080`), work);
    const open = sandboxRun(["--egress", `${ip},*`], loop(`http://bench.test:8080`), work);
    const dT = times(direct);
    const pT = times(proxied);
    const oT = times(open);
    const oMid = quantile(oT.slice(0, RUNS), 0.5);
    const dMid = quantile(dT.slice(0, RUNS), 0.5);
    const pMid = quantile(pT.slice(0, RUNS), 0.5);
    console.log("1. container → server, plain HTTP (busybox wget)");
    console.log(`   direct:        ${fmt(BYTES / dMid)}  (${dT.slice(0, RUNS).map((t) => `${t.toFixed(2)}s`).join(", ")})`);
    console.log(`   through proxy: ${fmt(BYTES / pMid)}  (${pT.slice(0, RUNS).map((t) => `${t.toFixed(2)}s`).join(", ")})`);
    console.log(`   proxy/direct:  ${((dMid / pMid) * 100).toFixed(0)}%`);
    console.log(`   allow-all (--egress '${ip},*', as public mode): ${fmt(BYTES / oMid)}, ${((dMid / oMid) * 100).toFixed(0)}% of direct  (${oT.slice(0, RUNS).map((t) => `${t.toFixed(2)}s`).join(", ")})`);
    const dSmall = (dT[RUNS] ?? 0) / 50;
    const pSmall = (pT[RUNS] ?? 0) / 50;
    console.log(`   50 small requests: ${(dSmall * 1000).toFixed(1)} ms vs ${(pSmall * 1000).toFixed(1)} ms each (includes starting wget); added ${((pSmall - dSmall) * 1000).toFixed(1)} ms\n`);

    // 2. From the host, TLS through CONNECT, proxy in its own process: direct, a plain tunnel, an intercepted one.
    const proxy = spawn(process.execPath, [import.meta.path, "proxy-child", ip, join(work, "cert.pem")], { stdio: ["pipe", "pipe", "inherit"] });
    children.push(proxy);
    const child = await firstJsonLine<{ port: number; ca: string }>(proxy);
    const paths: Array<{ label: string; target: Target; proxyPort: number | undefined }> = [
      { label: "direct", target: { host: ip, name: "bench.test", port: ports.httpsPort, ca: tls.cert }, proxyPort: undefined },
      { label: "plain tunnel", target: { host: ip, name: "bench.test", port: ports.httpsPort, ca: tls.cert }, proxyPort: child.port },
      { label: "intercepted (credential added)", target: { host: ip, name: "inject.test", port: ports.httpsPort, ca: child.ca }, proxyPort: child.port },
    ];
    const results = paths.map(() => ({ download: [] as number[], connection: [] as number[], request: [] as number[] }));
    // Interleaved, so drift on a shared machine spreads over all three.
    const step = (what: string) => process.stderr.write(`   … ${what}\n`);
    step("downloads");
    for (let i = 0; i < RUNS; i++) for (const [k, p] of paths.entries()) results[k]?.download.push(await download(p.target, p.proxyPort));
    step("new connections");
    for (let i = 0; i < 200; i++) for (const [k, p] of paths.entries()) results[k]?.connection.push(await handshake(p.target, p.proxyPort));
    step("kept-alive requests");
    for (const [k, p] of paths.entries()) results[k]?.request.push(...(await keptAlive(p.target, p.proxyPort, 500)));
    console.log("2. host → server, HTTPS (node:tls client, proxy in a separate process)");
    const base = results[0];
    for (const [k, p] of paths.entries()) {
      const r = results[k];
      if (!r || !base) continue;
      const mid = quantile(r.download, 0.5);
      const conn = quantile(r.connection, 0.5);
      const req = quantile(r.request, 0.5);
      const added = k === 0 ? "" : `; added: ${(conn - quantile(base.connection, 0.5)).toFixed(2)} ms per connection (p95 ${(quantile(r.connection, 0.95) - quantile(base.connection, 0.95)).toFixed(2)}), ${(req - quantile(base.request, 0.5)).toFixed(3)} ms per request`;
      console.log(
        `   ${p.label.padEnd(31)} ${fmt(BYTES / mid).padStart(11)} (${((quantile(base.download, 0.5) / mid) * 100).toFixed(0)}%); new connection ${conn.toFixed(2)} ms, request on a kept-alive connection ${req.toFixed(3)} ms (medians)${added}`,
      );
    }
  } finally {
    for (const c of children) {
      c.stdin?.end();
      c.kill("SIGTERM");
    }
    if (helper) await removeContainer(engine, helper, { force: true }).catch(() => {});
    await removeNetwork(engine, net).catch(() => {});
    rmSync(work, { recursive: true, force: true });
  }
}

function sandboxRun(flags: string[], script: string, work: string): string {
  // The compiled binary, as users run it (its JIT settings are the build's, scripts/build.ts).
  const r = spawnSync(BIN, ["run", "--image", IMAGE, ...flags, "sh", "-c", script], {
    cwd: work,
    env: { ...process.env, SANDBOX_EGRESS_HOSTS: join(work, "hosts") },
    encoding: "utf8",
    timeout: 600_000,
  });
  if (r.status !== 0) throw new Error(`sandbox run ${flags.join(" ")} failed (${r.status}): ${r.stderr}`);
  return r.stderr;
}

/** busybox `time` lines: "real\t0m 1.23s" → seconds. */
function times(stderr: string): number[] {
  return [...stderr.matchAll(/real\s+(\d+)m\s*([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
}

function fmt(bytesPerSecond: number): string {
  return `${(bytesPerSecond / 1024 / 1024).toFixed(0)} MiB/s`;
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0;
}

interface Target {
  host: string;
  name: string;
  port: number;
  ca: string;
}

/** A TCP socket to the server: direct, or a CONNECT tunnel through the proxy. */
function open(t: Target, proxyPort: number | undefined): Promise<Socket> {
  return new Promise((resolve, reject) => {
    if (proxyPort === undefined) {
      const s = netConnect({ host: t.host, port: t.port }, () => resolve(s));
      s.once("error", reject);
      return;
    }
    const s = netConnect({ host: "127.0.0.1", port: proxyPort }, () => s.write(`CONNECT ${t.name}:${t.port} HTTP/1.1\r\nHost: ${t.name}:${t.port}\r\n\r\n`));
    s.once("error", reject);
    let head = "";
    const onData = (d: Buffer) => {
      head += d.toString("latin1");
      if (!head.includes("\r\n\r\n")) return;
      s.off("data", onData);
      s.pause();
      if (head.startsWith("HTTP/1.1 200")) resolve(s);
      else reject(new Error(head.split("\r\n")[0]));
    };
    s.on("data", onData);
  });
}

async function download(t: Target, proxyPort: number | undefined): Promise<number> {
  const start = performance.now();
  const socket = await open(t, proxyPort);
  await new Promise<void>((resolve, reject) => {
    const req = httpsRequest(
      { host: t.name, servername: t.name, port: t.port, path: `/bytes/${BYTES}`, ca: t.ca, createConnection: () => tlsConnect({ socket, servername: t.name, ca: t.ca }) },
      (res) => {
        let n = 0;
        res.on("data", (c: Buffer) => (n += c.length));
        res.on("end", () => (n === BYTES ? resolve() : reject(new Error(`got ${n} bytes`))));
      },
    );
    req.on("error", reject);
    req.end();
  });
  return (performance.now() - start) / 1000;
}

async function handshake(t: Target, proxyPort: number | undefined): Promise<number> {
  const start = performance.now();
  const socket = await open(t, proxyPort);
  await new Promise<void>((resolve, reject) => {
    const s = tlsConnect({ socket, servername: t.name, ca: t.ca }, () => s.write(`GET /hello HTTP/1.1\r\nHost: ${authority(t)}\r\nConnection: close\r\n\r\n`));
    let head = "";
    s.on("data", (d: Buffer) => {
      if (head.length < 12) head += d.toString("latin1");
    });
    // A refusal (a 421 for a wrong Host, a 502) must not pass for a fast answer.
    s.once("end", () => (head.startsWith("HTTP/1.1 200") ? resolve() : reject(new Error(`answered ${head.split("\r\n")[0]}`))));
    s.once("error", reject);
  });
  return performance.now() - start;
}

/** The Host header for the target: with the port, which is not https's 443 (the proxy checks it in intercepted tunnels). */
function authority(t: Target): string {
  return t.port === 443 ? t.name : `${t.name}:${t.port}`;
}

/** Times of `n` sequential small requests on one kept-alive TLS connection (ms each). */
async function keptAlive(t: Target, proxyPort: number | undefined, n: number): Promise<number[]> {
  const socket = await open(t, proxyPort);
  const s = tlsConnect({ socket, servername: t.name, ca: t.ca, ALPNProtocols: ["http/1.1"] });
  await new Promise<void>((resolve, reject) => {
    s.once("secureConnect", () => resolve());
    s.once("error", reject);
  });
  const out: number[] = [];
  let buf = Buffer.alloc(0);
  let waiting: (() => void) | undefined;
  let closed = false;
  s.once("close", () => {
    closed = true;
    waiting?.();
  });
  s.on("data", (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    waiting?.();
  });
  const response = () =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        const length = /\r\ncontent-length:\s*(\d+)/i.exec(buf.subarray(0, end).toString("latin1"));
        if (!length || !buf.subarray(0, 12).toString("latin1").startsWith("HTTP/1.1 200")) return reject(new Error(`answered ${buf.subarray(0, end).toString("latin1").split("\r\n")[0]}`));
        const total = end + 4 + Number(length[1]);
        if (buf.length < total) return;
        buf = buf.subarray(total);
        waiting = undefined;
        resolve();
      };
      waiting = () => (closed ? reject(new Error("the connection closed")) : check());
      check();
    });
  for (let i = 0; i < n; i++) {
    const start = performance.now();
    s.write(`GET /hello HTTP/1.1\r\nHost: ${authority(t)}\r\n\r\n`);
    await response();
    out.push(performance.now() - start);
  }
  s.destroy();
  return out;
}

async function waitForPort(host: string, port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = netConnect({ host, port }, () => (s.destroy(), resolve(true)));
      s.once("error", () => resolve(false));
    });
    if (up) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${host}:${port} did not come up`);
}

function firstLine(child: ReturnType<typeof spawn>): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = "";
    const onData = (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf("\n");
      if (nl >= 0) {
        child.stdout?.off("data", onData);
        resolve(buf.slice(0, nl));
      }
    };
    child.stdout?.on("data", onData);
    child.once("exit", (code) => reject(new Error(`child exited (${code})`)));
  });
}

async function firstJsonLine<T>(child: ReturnType<typeof spawn>): Promise<T> {
  return JSON.parse(await firstLine(child)) as T;
}

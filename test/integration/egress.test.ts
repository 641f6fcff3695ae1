/**
 * --egress against the real engine. The destination servers (HTTP and HTTPS,
 * test/egress/server-main.ts) run inside a helper container's network
 * namespace on a Docker network this test creates: the host's proxy can
 * reach them, the sandboxed container has no route to them. Names are
 * mapped by a hosts file (SANDBOX_EGRESS_HOSTS), so no lookup ever leaves the
 * machine. Needs root (nsenter) on Docker; on Podman only the refusal is
 * checked, since Podman creates a network's bridge only when a container
 * starts, too late for the proxy.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createContainer, inspectContainer, removeContainer, startContainer } from "../../src/engine/containers.ts";
import { createNetwork, listNetworks, removeNetwork } from "../../src/engine/networks.ts";
import type { AuditEntry } from "../../src/egress/audit.ts";
import { testEngine } from "../helpers/engine.ts";
import { IS_PODMAN, ROOT, runSandbox, TEST_IMAGE } from "../helpers/sandbox.ts";
import { captureClientHello, makeCert } from "../egress/fixtures.ts";

const img = ["--image", TEST_IMAGE];
const work = mkdtempSync(join(tmpdir(), "sandbox-egress-"));
const ours = `io.sandbox.workspace=${work}`;
const hostsFile = join(work, ".hosts");
// The audit file is the host's: outside the workspace (inside, --audit is refused).
const records = mkdtempSync(join(tmpdir(), "sandbox-egress-audit-"));
const auditFile = join(records, "audit.jsonl");
const CAN_NSENTER = process.getuid?.() === 0 && spawnSync("nsenter", ["--version"]).status === 0;

/** Networks sandbox made for runs in this workspace: must be none after every run. */
async function leftoverNetworks(): Promise<string[]> {
  return (await listNetworks(await testEngine(), { labels: ["io.sandbox.managed=true", ours] })).map((n) => n.Name);
}

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
  rmSync(records, { recursive: true, force: true });
});

describe.skipIf(!IS_PODMAN)("--egress on Podman", () => {
  test("is refused with exit 125 before the command runs, and leaves no network", async () => {
    const r = await runSandbox(["run", ...img, "--egress", "allowed.test", "sh", "-c", "echo ran"], { cwd: work });
    expect(r.code).toBe(125);
    expect(r.stdout.toString()).toBe("");
    expect(r.stderr).toContain("--egress cannot be enforced here");
    expect(await leftoverNetworks()).toEqual([]);
  });
});

describe.skipIf(IS_PODMAN || !CAN_NSENTER)("--egress on Docker", () => {
  const tag = randomBytes(4).toString("hex");
  const serverNet = `sandbox-egress-test-${tag}`;
  let helper: string | undefined;
  let server: ChildProcess | undefined;
  let serverIp = "";
  let helperPid = 0;
  let httpPort = 0;
  let httpsPort = 0;
  const served: Array<{ method: string; url: string; host: string }> = [];

  beforeAll(async () => {
    const engine = await testEngine();
    // Internal: the servers need no way out either.
    await createNetwork(engine, { name: serverNet, internal: true, labels: { "io.sandbox.test": "egress" } });
    helper = await createContainer(engine, `${serverNet}-ns`, {
      Image: TEST_IMAGE,
      Cmd: ["sleep", "600"],
      Labels: { "io.sandbox.test": "egress" },
      HostConfig: { NetworkMode: serverNet, Init: true },
    });
    await startContainer(engine, helper);
    const details = (await inspectContainer(engine, helper)) as unknown as {
      State: { Pid: number };
      NetworkSettings: { Networks: Record<string, { IPAddress: string }> };
    };
    serverIp = details.NetworkSettings.Networks[serverNet]?.IPAddress ?? "";
    helperPid = details.State.Pid;
    expect(serverIp).toMatch(/^\d+\.\d+\.\d+\.\d+$/);

    const tls = makeCert(["allowed.test", "blocked.test"]);
    writeFileSync(join(work, ".key.pem"), tls.key);
    writeFileSync(join(work, ".cert.pem"), tls.cert);
    server = spawn("nsenter", ["-t", String(details.State.Pid), "-n", "--", process.execPath, resolve(ROOT, "test/egress/server-main.ts")], {
      env: { ...process.env, TLS_KEY: join(work, ".key.pem"), TLS_CERT: join(work, ".cert.pem") },
      stdio: ["pipe", "pipe", "inherit"],
    });
    await new Promise<void>((ready, fail) => {
      let buf = "";
      server?.stdout?.on("data", (d: Buffer) => {
        buf += d.toString();
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = JSON.parse(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
          if (line.httpPort) {
            httpPort = line.httpPort;
            httpsPort = line.httpsPort;
            ready();
          } else if (line.request) served.push(line.request);
        }
      });
      server?.once("exit", (code) => fail(new Error(`test servers exited (${code})`)));
      setTimeout(() => fail(new Error("test servers did not start")), 15_000);
    });

    // allowed.test and blocked.test are the same server; loop.test points at the host's loopback.
    writeFileSync(hostsFile, `${serverIp} allowed.test blocked.test\n127.0.0.1 loop.test\n`);
    writeFileSync(join(work, "hello-allowed.bin"), await captureClientHello("allowed.test"));
    writeFileSync(join(work, "hello-blocked.bin"), await captureClientHello("blocked.test"));
  }, 60_000);

  afterAll(async () => {
    server?.stdin?.end();
    server?.kill("SIGTERM");
    const engine = await testEngine();
    if (helper) await removeContainer(engine, helper, { force: true }).catch(() => {});
    await removeNetwork(engine, serverNet).catch(() => {});
  });

  const env = () => ({ SANDBOX_EGRESS_HOSTS: hostsFile });

  test("allowed hosts are reached over HTTP and CONNECT; everything else fails and is recorded", async () => {
    // Each attempt prints `name=rc`; raw tunnel bytes go to files in the workspace.
    const script = [
      'gp=${HTTP_PROXY#http://}; gw=${gp%:*}; port=${gp##*:}',
      `wget -q -O /work/out-http.txt http://allowed.test:${httpPort}/hello; echo http-allowed=$?`,
      `wget -q -O - http://blocked.test:${httpPort}/hello; echo http-blocked=$?`,
      `wget -q -O - http://loop.test:${httpPort}/hello; echo http-loopback=$?`,
      `for sni in allowed blocked; do { printf 'CONNECT allowed.test:${httpsPort} HTTP/1.1\\r\\nHost: allowed.test:${httpsPort}\\r\\n\\r\\n'; sleep 1; cat /work/hello-$sni.bin; sleep 2; } | nc -w 5 "$gw" "$port" > /work/out-tls-$sni.bin; done`,
      // Straight to the server, around the proxy: no route.
      `nc -w 3 ${serverIp} ${httpPort} </dev/null; echo direct=$?`,
      `wget -q -Y off -T 3 -O - http://${serverIp}:${httpPort}/hello; echo direct-wget=$?`,
      // No DNS inside: names are the proxy's business.
      "timeout 8 nslookup allowed.test >/dev/null 2>&1; echo dns=$?",
    ].join("\n");
    const r = await runSandbox(["run", ...img, "--egress", `allowed.test,loop.test,${serverIp}`, "--audit", auditFile, "sh", "-c", script], {
      cwd: work,
      env: env(),
      timeoutMs: 90_000,
    });
    const out = r.stdout.toString();
    expect(r.code).toBe(0);
    const rc = Object.fromEntries(out.trim().split("\n").map((l) => l.split("=") as [string, string]));
    expect(rc["http-allowed"]).toBe("0");
    expect(readFileSync(join(work, "out-http.txt"), "utf8")).toBe(`hello allowed.test:${httpPort}\n`);
    expect(rc["http-blocked"]).not.toBe("0");
    expect(rc["http-loopback"]).not.toBe("0");
    expect(rc.direct).not.toBe("0");
    expect(rc["direct-wget"]).not.toBe("0");
    expect(rc.dns).not.toBe("0");

    // The real TLS server answered the allowed ClientHello with a handshake record (its ServerHello)…
    const established = "HTTP/1.1 200 Connection established\r\n\r\n";
    const tlsAllowed = readFileSync(join(work, "out-tls-allowed.bin"));
    expect(tlsAllowed.subarray(0, established.length).toString()).toBe(established);
    expect([...tlsAllowed.subarray(established.length, established.length + 2)]).toEqual([0x16, 0x03]);
    // …and the fronted one got nothing after the CONNECT answer.
    expect(readFileSync(join(work, "out-tls-blocked.bin")).toString("latin1")).toBe(established);

    // The server only ever saw the allowed plain request.
    expect(served.filter((s) => s.url === "/hello")).toEqual([{ method: "GET", url: "/hello", host: `allowed.test:${httpPort}` }]);

    // Lines are written as connections end, so an allowed connection may come after later denials.
    const audit = readFileSync(auditFile, "utf8").trim().split("\n").map((l) => JSON.parse(l) as AuditEntry);
    const find = (method: string, host: string, decision: string) => audit.filter((e) => e.method === method && e.host === host && e.decision === decision);
    expect(audit.length).toBe(5);
    expect(find("GET", "allowed.test", "allow").length).toBe(1);
    expect(find("GET", "blocked.test", "deny")[0]?.reason).toBe("not on the allow-list");
    expect(find("GET", "loop.test", "deny")[0]?.reason).toContain("127.0.0.1 is a loopback address");
    const tunnel = find("CONNECT", "allowed.test", "allow");
    expect(tunnel.length).toBe(1);
    expect(tunnel[0]?.sni).toBe("allowed.test");
    expect(tunnel[0]?.bytesDown).toBeGreaterThan(100);
    const fronted = find("CONNECT", "allowed.test", "deny");
    expect(fronted[0]?.sni).toBe("blocked.test");
    expect(fronted[0]?.reason).toContain("names blocked.test, not allowed.test");
    expect(audit.every((e) => typeof e.time === "string" && Number.isInteger(e.bytesUp) && Number.isInteger(e.bytesDown))).toBe(true);

    expect(r.stderr).toContain("egress: denied 3 of 5 connections:");
    expect(r.stderr).toContain("blocked.test");
    expect(await leftoverNetworks()).toEqual([]);
  }, 120_000);

  test("ordered rules from inside a container: the exceptions example, and a deny rule for one method", async () => {
    // Every name is the same server; the rules alone tell them apart.
    const ruleHosts = join(work, ".hosts-rules");
    writeFileSync(ruleHosts, `${serverIp} jira.corp.test wiki.corp.test other.test allowed.test\n`);
    const ruleAudit = join(records, "rules.jsonl");
    const script = [
      `wget -q -O - http://jira.corp.test:${httpPort}/hello >/dev/null; echo jira=$?`,
      `wget -q -O - http://wiki.corp.test:${httpPort}/hello >/dev/null; echo wiki=$?`,
      `wget -q -O - http://other.test:${httpPort}/hello >/dev/null; echo other=$?`,
      `wget -q -O - http://allowed.test:${httpPort}/hello >/dev/null; echo get=$?`,
      // busybox wget sends --post-data as a GET through a proxy: a raw POST instead.
      'gp=${HTTP_PROXY#http://}; gw=${gp%:*}; port=${gp##*:}',
      `printf 'POST http://allowed.test:${httpPort}/echo HTTP/1.1\\r\\nContent-Length: 1\\r\\n\\r\\nx' | nc -w 5 "$gw" "$port" | head -1 | tr -d '\\r' | sed 's/^/post=/'`,
    ].join("\n");
    const rules = `jira.corp.test,!*.corp.test,!POST allowed.test/**,${serverIp},*`;
    const before = served.length;
    const r = await runSandbox(["run", ...img, "--egress", rules, "--audit", ruleAudit, "sh", "-c", script], {
      cwd: work,
      env: { SANDBOX_EGRESS_HOSTS: ruleHosts },
      timeoutMs: 90_000,
    });
    expect(r.code).toBe(0);
    const rc = Object.fromEntries(r.stdout.toString().trim().split("\n").map((l) => l.split("=") as [string, string]));
    expect(rc).toMatchObject({ jira: "0", other: "0", get: "0" });
    expect(rc.wiki).not.toBe("0");
    expect(rc.post).toBe("HTTP/1.1 403 Forbidden");
    expect(served.slice(before).map((s) => `${s.method} ${s.host}${s.url}`)).toEqual([
      `GET jira.corp.test:${httpPort}/hello`,
      `GET other.test:${httpPort}/hello`,
      `GET allowed.test:${httpPort}/hello`,
    ]);
    const audit = readFileSync(ruleAudit, "utf8").trim().split("\n").map((l) => JSON.parse(l) as AuditEntry);
    const reason = (method: string, host: string) => audit.find((e) => e.method === method && e.host === host)?.reason;
    expect(reason("GET", "jira.corp.test")).toBe("matched jira.corp.test");
    expect(reason("GET", "wiki.corp.test")).toBe("denied by !*.corp.test");
    expect(reason("GET", "other.test")).toBe("matched *");
    expect(reason("POST", "allowed.test")).toBe("denied by !POST allowed.test/**");
    expect(await leftoverNetworks()).toEqual([]);
  }, 120_000);

  test("the container sees the proxy in both spellings; containers on other networks cannot use it", async () => {
    // While the run waits, a process in the helper's network namespace (another Docker network,
    // like another run's container) tries this run's proxy.
    let outsider: Promise<number | null> | undefined;
    const r = await runSandbox(
      ["run", ...img, "--egress", `allowed.test,${serverIp}`, "--audit", join(records, "outsider.jsonl"), "sh", "-c", "env | grep -i _proxy= | sort; sleep 4"],
      {
        cwd: work,
        env: env(),
        onSpawn: (child) => {
          let text = "";
          child.stdout?.on("data", (d: Buffer) => {
            text += d.toString();
            const proxy = /^HTTP_PROXY=(\S+)$/m.exec(text)?.[1];
            if (!proxy || outsider) return;
            outsider = new Promise((done) => {
              const curl = spawn("nsenter", ["-t", String(helperPid), "-n", "--", "curl", "-s", "-m", "3", "-x", proxy, `http://allowed.test:${httpPort}/hello`], { stdio: "ignore" });
              curl.on("exit", (code) => done(code));
            });
          });
        },
      },
    );
    expect(r.code).toBe(0);
    const out = r.stdout.toString();
    for (const name of ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"]) expect(out).toMatch(new RegExp(`^${name}=http://\\d+\\.\\d+\\.\\d+\\.\\d+:\\d+$`, "m"));
    expect(out).toContain("NO_PROXY=localhost,127.0.0.1,::1");
    expect(await outsider).not.toBe(0);
    const audit = readFileSync(join(records, "outsider.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as AuditEntry);
    expect(audit.length).toBe(1);
    expect(audit[0]?.decision).toBe("deny");
    expect(audit[0]?.reason).toStartWith("client outside the run's network");
  }, 60_000);

  test("the network goes away when the command fails and when sandbox is interrupted", async () => {
    const failed = await runSandbox(["run", ...img, "--egress", "allowed.test", "sh", "-c", "exit 3"], { cwd: work, env: env() });
    expect(failed.code).toBe(3);
    expect(await leftoverNetworks()).toEqual([]);

    const interrupted = await runSandbox(["run", ...img, "--egress", "allowed.test", "sh", "-c", "echo started; exec sleep 60"], {
      cwd: work,
      env: env(),
      onSpawn: (child) => {
        child.stdout?.once("data", () => setTimeout(() => child.kill("SIGINT"), 300));
      },
    });
    expect(interrupted.code).toBe(130);
    expect(await leftoverNetworks()).toEqual([]);
  }, 90_000);

  test("--network none: only loopback, nothing reachable, no proxy", async () => {
    const r = await runSandbox(
      ["run", ...img, "--network", "none", "sh", "-c", `ip -o -4 addr | awk '{print $2}'; env | grep -ci _proxy=; nc -w 2 ${serverIp} ${httpPort} </dev/null 2>/dev/null; echo direct=$?`],
      { cwd: work },
    );
    expect(r.stdout.toString()).toBe("lo\n0\ndirect=1\n");
  }, 30_000);

  test("--audit without an allow-list is a usage error", async () => {
    const r = await runSandbox(["run", ...img, "--audit", "x.jsonl", "true"], { cwd: work });
    expect(r.code).toBe(125);
    expect(r.stderr).toContain("--audit");
    expect(existsSync(join(work, "x.jsonl"))).toBe(false);
  });
});

/**
 * Public mode (issue #15) against the real engine: the default network of
 * agent runs, and `--network public`. On Docker, a run reaches a made-up
 * public-looking name (a plain HTTP server on this machine's loopback that
 * SANDBOX_EGRESS_UPSTREAMS stands in for it), while names that resolve to
 * private, loopback or link-local addresses (SANDBOX_EGRESS_HOSTS) and such
 * addresses asked for directly are refused: the proxy's audit says so, no
 * packet is needed. An agent run whose network nobody chose gets this mode
 * and a placeholder for its key. On Podman, where the proxy cannot run, the
 * agents' default falls back to bridge with a warning, and an explicit
 * `--network public` is refused. Nothing leaves the machine: the hosts file
 * resolves every name the runs use.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AuditEntry } from "../../src/egress/audit.ts";
import { listNetworks } from "../../src/engine/networks.ts";
import { testEngine } from "../helpers/engine.ts";
import { IS_PODMAN, runSandbox, TEST_IMAGE } from "../helpers/sandbox.ts";

const img = ["--image", TEST_IMAGE];
const work = mkdtempSync(join(tmpdir(), "sandbox-public-"));
const records = mkdtempSync(join(tmpdir(), "sandbox-public-host-"));
const hostsFile = join(records, "hosts");
const auditFile = join(records, "audit.jsonl");
const ours = `io.sandbox.workspace=${work}`;
const SECRET = `sk-ant-public-${randomBytes(12).toString("hex")}`;
const PLACEHOLDER = "sandbox-proxy-managed";
const ANSWER = `public-answer-${randomBytes(4).toString("hex")}`;

writeFileSync(hostsFile, "192.168.77.7 lan.example\n10.11.12.13 intranet.example\n127.0.0.1 loop.example\n169.254.169.254 metadata.example\n");

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
  rmSync(records, { recursive: true, force: true });
});

async function leftoverNetworks(): Promise<string[]> {
  return (await listNetworks(await testEngine(), { labels: ["io.sandbox.managed=true", ours] })).map((n) => n.Name);
}

const BRIDGE_WARNING =
  "sandbox: warning: --network bridge: ANTHROPIC_API_KEY on this host is not provided to the container (neither the key nor a placeholder); in public mode the egress proxy would add it for api.anthropic.com (credential rule anthropic-api-key). Pass --env ANTHROPIC_API_KEY to hand the real value in on purpose, or drop --network bridge to have the proxy add it (docs/credentials.md)";

describe.skipIf(IS_PODMAN)("public mode on Docker", () => {
  let server: Server | undefined;
  let port = 0;
  const served: string[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      served.push(`${req.method} ${req.headers.host} ${req.url}`);
      res.end(`${ANSWER} for ${req.headers.host}\n`);
    });
    await new Promise<void>((ready) => server?.listen(0, "127.0.0.1", () => ready()));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise<void>((done) => (server ? server.close(() => done()) : done()));
  });

  const env = (extra: Record<string, string> = {}) => ({
    SANDBOX_EGRESS_HOSTS: hostsFile,
    // The one "public" site: a made-up name dialled at the local server (the only way a run reaches this machine's loopback).
    SANDBOX_EGRESS_UPSTREAMS: `www.public-site.example:80=127.0.0.1:${port}`,
    ...extra,
  });

  test("an agent run gets it by default: a public name is reached; private, loopback, link-local and the host refused; the audit says why", async () => {
    const script = [
      "wget -q -O - http://www.public-site.example/page; echo public=$?",
      "wget -q -O - http://lan.example/; echo lan=$?",
      "wget -q -O - http://intranet.example/; echo intranet=$?",
      "wget -q -O - http://loop.example/; echo loop=$?",
      "wget -q -O - http://metadata.example/latest/meta-data/; echo metadata=$?",
      "wget -q -O - http://169.254.169.254/latest/meta-data/; echo metadata-ip=$?",
      // This host, as the container's gateway (the proxy's own address).
      'gp=${HTTP_PROXY#http://}; gw=${gp%:*}; wget -q -O - "http://$gw:8080/"; echo gateway=$?',
    ].join("\n");
    const r = await runSandbox(["run", ...img, "--agent", "claude", "--no-state", "--audit", auditFile, "sh", "-c", script], { cwd: work, env: env(), timeoutMs: 90_000 });
    const out = r.stdout.toString();
    if (r.code !== 0) console.error(r.stderr, out);
    expect(r.code).toBe(0);
    expect(out).toContain(`${ANSWER} for www.public-site.example\npublic=0\n`);
    const rc = Object.fromEntries(out.trim().split("\n").filter((l) => /^[a-z-]+=\d+$/.test(l)).map((l) => l.split("=") as [string, string]));
    for (const name of ["lan", "intranet", "loop", "metadata", "metadata-ip", "gateway"]) expect(rc[name]).not.toBe("0");
    expect(served).toEqual(["GET www.public-site.example /page"]);

    const audit = readFileSync(auditFile, "utf8").trim().split("\n").map((l) => JSON.parse(l) as AuditEntry);
    const line = (host: string) => audit.find((e) => e.host === host);
    expect(line("www.public-site.example")).toMatchObject({ decision: "allow", reason: "matched *" });
    expect(line("lan.example")).toMatchObject({ decision: "deny" });
    expect(line("lan.example")?.reason).toContain("192.168.77.7 is a private-network address");
    expect(line("intranet.example")?.reason).toContain("10.11.12.13 is a private-network address");
    expect(line("loop.example")?.reason).toContain("127.0.0.1 is a loopback address");
    expect(line("metadata.example")?.reason).toContain("169.254.169.254 is a link-local address");
    expect(line("169.254.169.254")?.decision).toBe("deny");
    const gateway = audit.find((e) => /^\d+\.\d+\.\d+\.\d+$/.test(e.host) && e.host !== "169.254.169.254");
    expect(gateway?.decision).toBe("deny");
    expect(audit.filter((e) => e.decision === "allow").map((e) => e.host)).toEqual(["www.public-site.example"]);
    expect(r.stderr).toContain("egress: denied 6 of 7 connections:");
    expect(r.stderr).not.toContain("cannot be enforced");
    expect(await leftoverNetworks()).toEqual([]);
  }, 120_000);

  test("with ANTHROPIC_API_KEY on the host, an agent run holds only the placeholder; one line names the rule; --dry-run shows the mode", async () => {
    const r = await runSandbox(["run", ...img, "--agent", "claude", "--no-state", "sh", "-c", 'echo "key=$ANTHROPIC_API_KEY"; env | grep -c sk-ant- || true'], {
      cwd: work,
      env: env({ ANTHROPIC_API_KEY: SECRET }),
    });
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe(`key=${PLACEHOLDER}\n0\n`);
    expect(r.stderr).toContain(
      "sandbox: credentials: ANTHROPIC_API_KEY is added by the proxy for api.anthropic.com (rule anthropic-api-key; the container sees a placeholder in ANTHROPIC_API_KEY)",
    );
    expect(r.stderr).not.toContain(SECRET);

    const dry = await runSandbox(["run", ...img, "--agent", "claude", "--dry-run", "true"], { cwd: work, env: env({ ANTHROPIC_API_KEY: SECRET }) });
    expect(dry.code).toBe(0);
    const view = JSON.parse(dry.stdout.toString()) as { security: { network: string; egress: { mode: string; byDefault: boolean; allow: string[] } }; sources: Record<string, string> };
    expect(view.security.egress).toMatchObject({ mode: "public", byDefault: true, allow: ["api.anthropic.com:443", "*"] });
    expect(view.security.network).toEndWith("-egress");
    expect(view.sources.network).toBe("default");
    expect(dry.stdout.toString()).not.toContain(SECRET);
  }, 60_000);

  test("--network public for any command; --egress rules come first", async () => {
    const r = await runSandbox(["run", ...img, "--network", "public", "--egress", "!www.public-site.example", "--audit", auditFile, "sh", "-c", "wget -q -O - http://www.public-site.example/; echo public=$?"], {
      cwd: work,
      env: env(),
    });
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe("public=1\n");
    const audit = readFileSync(auditFile, "utf8").trim().split("\n").map((l) => JSON.parse(l) as AuditEntry);
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ host: "www.public-site.example", decision: "deny", reason: "denied by !www.public-site.example" });
  }, 60_000);

  test("--network bridge takes an agent off the proxy: no key, no placeholder, and a warning that says how to get it", async () => {
    const r = await runSandbox(["run", ...img, "--agent", "claude", "--no-state", "--network", "bridge", "sh", "-c", 'echo "key=[$ANTHROPIC_API_KEY]"'], { cwd: work, env: env({ ANTHROPIC_API_KEY: SECRET }) });
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe("key=[]\n");
    expect(r.stderr).toContain(BRIDGE_WARNING);
    // --env passes the value raw on purpose: no warning about the key then.
    const raw = await runSandbox(["run", ...img, "--agent", "claude", "--no-state", "--network", "bridge", "--env", "ANTHROPIC_API_KEY", "sh", "-c", 'echo "length=${#ANTHROPIC_API_KEY}"'], {
      cwd: work,
      env: env({ ANTHROPIC_API_KEY: SECRET }),
    });
    expect(raw.stdout.toString()).toBe(`length=${SECRET.length}\n`);
    expect(raw.stderr).not.toContain("is not provided");
  }, 60_000);
});

describe.skipIf(!IS_PODMAN)("public mode on Podman", () => {
  test("an agent's default falls back to bridge with a warning: the key is not provided, the local network reachable", async () => {
    const r = await runSandbox(["run", ...img, "--agent", "claude", "--no-state", "sh", "-c", 'echo "ran key=[$ANTHROPIC_API_KEY]"'], { cwd: work, env: { ANTHROPIC_API_KEY: SECRET } });
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe("ran key=[]\n");
    expect(r.stderr).toContain(
      "sandbox: warning: public mode, the default network for agents, cannot be enforced here (the engine is Podman, which creates a network's bridge only when a container starts, too late for the proxy), so this run uses bridge: the command can reach the local network and this host. ANTHROPIC_API_KEY on this host is not provided to the container (neither the key nor a placeholder)",
    );
    expect(r.stderr).not.toContain(SECRET);
    expect(await leftoverNetworks()).toEqual([]);
    // --dry-run tells the same.
    const dry = await runSandbox(["run", ...img, "--agent", "claude", "--dry-run", "true"], { cwd: work });
    expect(dry.code).toBe(0);
    expect((JSON.parse(dry.stdout.toString()) as { security: { egress: unknown; network: string } }).security).toMatchObject({ egress: null, network: "bridge" });
    expect(dry.stderr).toContain("public mode, the default network for agents, cannot be enforced here");
  }, 60_000);

  test("chosen on purpose, it is refused (exit 125) before anything is made: --network public, and the default with --audit", async () => {
    const r = await runSandbox(["run", ...img, "--network", "public", "sh", "-c", "echo ran"], { cwd: work });
    expect(r.code).toBe(125);
    expect(r.stdout.toString()).toBe("");
    expect(r.stderr).toContain("--network public cannot be enforced here: the engine is Podman");
    const audited = await runSandbox(["run", ...img, "--agent", "claude", "--no-state", "--audit", auditFile, "sh", "-c", "echo ran"], { cwd: work });
    expect(audited.code).toBe(125);
    expect(audited.stdout.toString()).toBe("");
    expect(audited.stderr).toContain("--audit cannot be honoured here");
    expect(await leftoverNetworks()).toEqual([]);
  }, 60_000);
});

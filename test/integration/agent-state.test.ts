/**
 * Agent state persists per agent and per workspace: a second run in the same
 * workspace finds what the first wrote; a run in another workspace does not,
 * so what one repository's agent plants (hooks, MCP commands) never reaches
 * another repository's runs. --no-state starts from scratch. Corporate CAs
 * reach the run as one read-only bundle.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runSandbox, TEST_IMAGE } from "../helpers/sandbox.ts";

const root = mkdtempSync(join(tmpdir(), "sandbox-agent-state-"));
const state = join(root, "state");
const repoA = join(root, "repo-a");
const repoB = join(root, "repo-b");
mkdirSync(repoA);
mkdirSync(repoB);
afterAll(() => rmSync(root, { recursive: true, force: true }));

function inAgent(cwd: string, script: string, extra: string[] = []) {
  // Bridge: these runs are about state, not the agents' default network (public-mode.test.ts).
  return runSandbox(["run", "--agent", "claude", "--network", "bridge", "--image", TEST_IMAGE, ...extra, "sh", "-c", script], { cwd, env: { XDG_STATE_HOME: state } });
}

describe("agent state", () => {
  test("persists for the same workspace, and only for it", async () => {
    const planted = await inAgent(repoA, "mkdir -p ~/.claude && echo 'hook from repo A' > ~/.claude/settings.json && echo planted");
    expect(planted.stderr).toBe("");
    expect(planted.stdout.toString()).toBe("planted\n");

    const again = await inAgent(repoA, "cat ~/.claude/settings.json");
    expect(again.stdout.toString()).toBe("hook from repo A\n");

    const other = await inAgent(repoB, "cat ~/.claude/settings.json 2>/dev/null || echo nothing here");
    expect(other.stdout.toString()).toBe("nothing here\n");

    // On the host: one folder per workspace, each with the workspace it belongs to beside it (out of the agent's reach).
    const dirs = readdirSync(join(state, "sandbox", "agents", "claude")).sort();
    expect(dirs.filter((d) => d.endsWith(".workspace")).map((d) => readFileSync(join(state, "sandbox", "agents", "claude", d), "utf8")).sort()).toEqual([`${repoA}\n`, `${repoB}\n`]);
    expect(dirs.filter((d) => !d.endsWith(".workspace")).every((d) => d.startsWith("repo-a-") || d.startsWith("repo-b-"))).toBe(true);
  });

  test("--no-state starts from scratch and keeps nothing", async () => {
    const r = await inAgent(repoA, "cat ~/.claude/settings.json 2>/dev/null || echo fresh; mkdir -p ~/.claude; echo x > ~/.claude/gone", ["--no-state"]);
    expect(r.stdout.toString()).toBe("fresh\n");
    const after = await inAgent(repoA, "ls ~/.claude");
    expect(after.stdout.toString()).toBe("settings.json\n");
  });

  test("a plain command (no agent profile) keeps no state", async () => {
    const r = await runSandbox(["run", "--image", TEST_IMAGE, "sh", "-c", "ls -A ~ | wc -l"], { cwd: repoA, env: { XDG_STATE_HOME: state } });
    expect(r.stdout.toString().trim()).toBe("0");
  });
});

describe("--ca-cert in a run", () => {
  test("one read-only bundle (this machine's trust store first, then the given CA), named by the variables clients read", async () => {
    const system = "/etc/ssl/certs/ca-certificates.crt";
    if (!existsSync(system)) return;
    const r = await runSandbox(
      ["run", "--ca-cert", system, "--image", TEST_IMAGE, "sh", "-c", 'for v in NODE_EXTRA_CA_CERTS SSL_CERT_FILE REQUESTS_CA_BUNDLE GIT_SSL_CAINFO PIP_CERT; do eval echo "$v=\\$$v"; done; grep -c "BEGIN CERTIFICATE" /etc/sandbox/ca-bundle.pem; echo x >> /etc/sandbox/ca-bundle.pem || echo read-only'],
      { cwd: repoA, env: { XDG_STATE_HOME: state } },
    );
    const lines = r.stdout.toString().trim().split("\n");
    for (const v of ["NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "GIT_SSL_CAINFO", "PIP_CERT"]) expect(lines).toContain(`${v}=/etc/sandbox/ca-bundle.pem`);
    const hostCount = (readFileSync(system, "utf8").match(/BEGIN CERTIFICATE/g) ?? []).length;
    expect(Number(lines[5])).toBeGreaterThan(0);
    expect(Number(lines[5])).toBeLessThanOrEqual(hostCount); // the same bundle given twice is deduplicated
    expect(lines[6]).toBe("read-only");
  });

  test("a file without a certificate is refused before any container, exit 125", async () => {
    const r = await runSandbox(["run", "--ca-cert", "/etc/hostname", "--image", TEST_IMAGE, "true"], { cwd: repoA, env: { XDG_STATE_HOME: state } });
    expect(r.code).toBe(125);
    expect(r.stderr).toContain("/etc/hostname holds no PEM certificate");
  });
});

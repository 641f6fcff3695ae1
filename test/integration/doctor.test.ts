/**
 * `sandbox doctor` on a host without a probe image (issue #16: an air-gapped
 * host showed no checks at all), and `--json` as a CI job reads it, against
 * the real engine.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { managedContainers } from "../helpers/engine.ts";
import { IS_PODMAN, runSandbox, TEST_IMAGE } from "../helpers/sandbox.ts";

const work = mkdtempSync(join(tmpdir(), "sandbox-doctor-it-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** An image no engine has, and no registry is reachable from the test engines to pull it. */
const NO_IMAGE = "nosuch/probe:1";
const ENGINE_CHECKS = ["seccomp", "no-new-privileges", "memory-limit", "swap-limit", "pids-limit", "runtime"];
const PROBE_CHECKS = ["capabilities", "read-only-root", "secret-mask", "protect"];

type Check = { id: string; status: string; detail: string };
type Report = { status: string; exitCode: number; ok: boolean; engine: { address: string; server: string | null; rootless: boolean }; probe: { status: string; image: string; detail?: string }; checks: Check[] };

const statuses = (report: Report) => Object.fromEntries(report.checks.map((c) => [c.id, c.status]));

describe("sandbox doctor without a probe image", () => {
  test(
    "the engine's checks are made, the probe is skipped with the way to run it, exit 0 (nothing failed)",
    async () => {
      const r = await runSandbox(["doctor", "--image", NO_IMAGE], { cwd: work });
      const text = r.stdout.toString();
      expect(r.code).toBe(0);
      expect(text).toStartWith(`engine: ${IS_PODMAN ? "Podman" : "Docker"} `);
      expect(text).toContain("probe: skipped, no image for it: pass --image IMAGE to run the live probe");
      for (const name of ENGINE_CHECKS) expect(text).toMatch(new RegExp(`^${name} +active `, "m"));
      for (const name of PROBE_CHECKS) expect(text).toMatch(new RegExp(`^${name} +skipped +not checked: needs the live probe`, "m"));
      expect(text).toMatch(new RegExp(`^probe +skipped +image "${NO_IMAGE}" is not present locally and pulling it failed`, "m"));
      expect(text).toContain("the engine's checks pass; 4 protection(s) not checked without the live probe");
      // The failed pull's own lines stay on stderr; the error is not repeated there.
      expect(r.stderr).not.toContain("sandbox image load");
      // No registry may hang it: the pull fails fast and the doctor goes on.
      expect(r.ms).toBeLessThan(30_000);
      expect((await managedContainers()).filter((c) => c.Labels?.["io.sandbox.workspace"]?.includes("sandbox-doctor-")).length).toBe(0);
    },
    60_000,
  );

  test(
    "--json: status warn, exit 0, the engine's checks pass, the probe's are skip",
    async () => {
      const r = await runSandbox(["doctor", "--image", NO_IMAGE, "--json"], { cwd: work });
      expect(r.code).toBe(0);
      const report = JSON.parse(r.stdout.toString()) as Report;
      expect(report).toMatchObject({ status: "warn", exitCode: 0, ok: true, probe: { status: "skipped", image: NO_IMAGE } });
      expect(report.checks[0]).toMatchObject({ id: "engine", status: "pass" });
      const s = statuses(report);
      for (const id of ENGINE_CHECKS) expect(s[id]).toBe("pass");
      for (const id of [...PROBE_CHECKS, "probe"]) expect(s[id]).toBe("skip");
      expect(report.checks.find((c) => c.id === "probe")?.detail).toContain("pass --image IMAGE to run the live probe");
      for (const c of report.checks) expect(["pass", "warn", "fail", "skip"]).toContain(c.status);
      // --json keeps stderr free of progress lines.
      expect(r.stderr).toBe("");
    },
    60_000,
  );
});

describe("sandbox doctor --json with a probe image", () => {
  test(
    "every check passes, the probe's included; status pass, exit 0",
    async () => {
      const r = await runSandbox(["doctor", "--image", TEST_IMAGE, "--json"], { cwd: work });
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      const report = JSON.parse(r.stdout.toString()) as Report;
      expect(report).toMatchObject({ status: "pass", exitCode: 0, ok: true, probe: { status: "ran", image: TEST_IMAGE } });
      const s = statuses(report);
      for (const id of ["engine", ...ENGINE_CHECKS, ...PROBE_CHECKS, "probe"]) expect(s[id]).toBe("pass");
      // The runc of both engines is named, Podman's from GET /version.
      expect(s["runc-version"]).toBe("pass");
      expect(s["cpu-limit"]).toBe("skip");
      expect(report.engine.server).toMatch(IS_PODMAN ? /^Libpod\// : /^Docker\//);
    },
    120_000,
  );

  test("an engine that cannot be reached: a report with the failed engine check on stdout, the reason on stderr, exit 125", async () => {
    const r = await runSandbox(["doctor", "--image", TEST_IMAGE, "--json"], { cwd: work, env: { DOCKER_HOST: `unix://${join(work, "no-engine.sock")}` } });
    expect(r.code).toBe(125);
    const report = JSON.parse(r.stdout.toString()) as Report;
    expect(report).toMatchObject({ status: "fail", exitCode: 125, ok: false });
    expect(report.checks).toHaveLength(1);
    expect(report.checks[0]).toMatchObject({ id: "engine", status: "fail" });
    expect(report.checks[0]?.detail).toContain("cannot reach the container engine");
    expect(r.stderr).toContain("sandbox: cannot reach the container engine");
  });
});

describe("sandbox doctor: egress runs and the host (docs/egress.md, 'The host')", () => {
  test("says whether host services are kept out of egress runs here", async () => {
    const r = await runSandbox(["doctor", "--image", NO_IMAGE, "--json"], { cwd: work });
    const check = (JSON.parse(r.stdout.toString()) as Report).checks.find((c) => c.id === "egress-host");
    if (IS_PODMAN) expect(check).toMatchObject({ status: "skip", detail: expect.stringContaining("egress runs are refused with this engine") });
    else if (process.getuid?.() === 0) expect(check).toMatchObject({ status: "pass", detail: expect.stringContaining("only the proxy's port answers") });
    else expect(check).toMatchObject({ status: "warn", detail: expect.stringContaining("cannot add its firewall rules") });
  });
});

describe("sandbox doctor: the credential rules", () => {
  test("listed after the protections and in --json, values never shown, a command source not run; the status unchanged", async () => {
    const secret = `sk-ant-doctor-${Date.now().toString(36)}`;
    const marker = join(work, "helper-ran");
    const helper = join(work, "helper.sh");
    writeFileSync(helper, `#!/bin/sh\ntouch '${marker}'\necho ${secret}\n`, { mode: 0o755 });
    mkdirSync(join(work, "xdg", "sandbox"), { recursive: true });
    writeFileSync(join(work, "xdg", "sandbox", "config.yaml"), `credentials:\n  - name: vault\n    hosts: vault.corp.example\n    header: x-vault-token\n    command: [${helper}]\n`);
    const env = { XDG_CONFIG_HOME: join(work, "xdg"), ANTHROPIC_API_KEY: secret };

    const text = await runSandbox(["doctor", "--image", NO_IMAGE], { cwd: work, env });
    expect(text.code).toBe(0);
    const out = text.stdout.toString();
    expect(out).toMatch(/^CREDENTIAL RULE +HOSTS +HEADER +VALUE$/m);
    expect(out).toMatch(/^vault \(yours\) +vault\.corp\.example +x-vault-token: \{value\} +from `.*helper\.sh` if it prints a value \(a command: not run here/m);
    expect(out).toMatch(/^anthropic-api-key +api\.anthropic\.com +x-api-key: \{value\} +from \$ANTHROPIC_API_KEY$/m);
    expect(out).toMatch(/^openai-api-key +api\.openai\.com +authorization: Bearer \{value\} +no value on this host \(\$OPENAI_API_KEY is not set\)$/m);

    const json = await runSandbox(["doctor", "--image", NO_IMAGE, "--json"], { cwd: work, env });
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout.toString()) as Report & { credentials: Array<Record<string, unknown>> };
    expect(report.status).toBe("warn");
    expect(report.checks.some((c) => c.id.includes("credential"))).toBe(false);
    expect(report.credentials.map((c) => c.rule)).toEqual(["vault", "anthropic-api-key", "claude-oauth-token", "openai-api-key", "gemini-api-key", "openrouter-api-key", "github-api", "github-git"]);
    expect(report.credentials[1]).toMatchObject({ rule: "anthropic-api-key", hosts: ["api.anthropic.com"], header: "x-api-key", value: "available", from: "$ANTHROPIC_API_KEY" });
    expect(report.credentials[0]).toMatchObject({ rule: "vault", value: "command" });
    expect(existsSync(marker)).toBe(false);
    expect(`${out}${json.stdout.toString()}${text.stderr}${json.stderr}`).not.toContain(secret);
  }, 90_000);
});

import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runSandbox, TEST_IMAGE } from "../helpers/sandbox.ts";
import { managedContainers } from "../helpers/engine.ts";

const root = mkdtempSync(join(tmpdir(), "sandbox-config-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const imageFlag = ["--image", TEST_IMAGE];
const img = imageFlag;

function workspace(name: string, sandboxYml?: string): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  if (sandboxYml !== undefined) writeFileSync(join(dir, ".sandbox.yml"), sandboxYml);
  return dir;
}

describe(".sandbox.yml", () => {
  // The file is obeyed only once trusted (test/integration/trust.test.ts): these runs trust it for themselves.
  const img = [...imageFlag, "--trust-workspace-config"];
  test("setup steps run in order, echoed, then the command with its exit code", async () => {
    const dir = workspace("setup-ok", "setup:\n  - echo one > /tmp/order\n  - echo two >> /tmp/order\n");
    const r = await runSandbox(["run", ...img, "sh", "-c", "cat /tmp/order; exit 6"], { cwd: dir });
    expect(r.stdout.toString()).toBe("one\ntwo\n");
    expect(r.code).toBe(6);
    expect(r.stderr).toContain("setup 1/2: echo one > /tmp/order");
    expect(r.stderr.indexOf("setup 1/2")).toBeLessThan(r.stderr.indexOf("setup 2/2"));
  });

  test("a failing setup step stops the run with that step's code", async () => {
    const dir = workspace("setup-fail", "setup:\n  - echo first\n  - exit 9\n  - echo never\n");
    const r = await runSandbox(["run", ...img, "sh", "-c", "echo command-ran"], { cwd: dir });
    expect(r.code).toBe(9);
    expect(r.stdout.toString()).toBe("first\n");
    expect(r.stdout.toString()).not.toContain("command-ran");
  });

  test("a workspace file asking for cap_add or seccomp: unconfined is refused before any container", async () => {
    for (const [name, body] of [
      ["caps", "cap_add: [SYS_ADMIN]\n"],
      ["seccomp", "security:\n  seccomp: unconfined\n"],
    ] as const) {
      const dir = workspace(`refuse-${name}`, body);
      const r = await runSandbox(["run", ...img, "true"], { cwd: dir });
      expect(r.code).toBe(125);
      expect(r.stderr).toContain(".sandbox.yml");
      expect(r.stderr).toMatch(/config\.yaml|flag/);
      expect((await managedContainers(`io.sandbox.workspace=${dir}`)).length).toBe(0);
    }
  });

  test("workspace env values reach the command", async () => {
    const dir = workspace("env", "env:\n  GREETING: hello-from-yml\n");
    const r = await runSandbox(["run", ...img, "sh", "-c", 'echo "$GREETING"'], { cwd: dir });
    expect(r.stdout.toString()).toBe("hello-from-yml\n");
  });
});

describe("global config", () => {
  test("an invalid config fails with 125 naming the file, the key and the expected value", async () => {
    const dir = workspace("bad-config");
    const file = join(dir, "config.yaml");
    writeFileSync(file, "security:\n  memory: 4XB\n");
    const r = await runSandbox(["run", ...img, "true"], { cwd: dir, env: { SANDBOX_CONFIG: file } });
    expect(r.code).toBe(125);
    expect(r.stderr).toContain(file);
    expect(r.stderr).toContain("security.memory");
    expect(r.stderr).toContain("4XB");
  });

  test("an agent's secret is forwarded only for that agent, only when the user's config opts in", async () => {
    const dir = workspace("agent-env");
    const file = join(dir, "config.yaml");
    writeFileSync(file, "agents:\n  claude:\n    env: [ANTHROPIC_API_KEY]\n");
    const env = { SANDBOX_CONFIG: file, ANTHROPIC_API_KEY: "sk-test-secret-123" };
    const claude = await runSandbox(["run", ...img, "--agent", "claude", "env"], { cwd: dir, env });
    expect(claude.code).toBe(0);
    expect(claude.stdout.toString()).toContain("ANTHROPIC_API_KEY=sk-test-secret-123");
    const python = await runSandbox(["run", ...img, "--agent", "python", "env"], { cwd: dir, env });
    expect(python.stdout.toString()).not.toContain("sk-test-secret-123");
    const noOptIn = await runSandbox(["run", ...img, "--agent", "claude", "env"], { cwd: dir, env: { ANTHROPIC_API_KEY: "sk-test-secret-123" } });
    expect(noOptIn.stdout.toString()).not.toContain("sk-test-secret-123");
  });
});

describe("--cache", () => {
  const step = 'if [ -f "$npm_config_cache/pkg.tgz" ]; then echo hit; else mkdir -p "$HOME/.cache/npm" && echo data > "$HOME/.cache/npm/pkg.tgz" && echo miss; fi';

  test("a second identical step reuses what the first wrote", async () => {
    const dir = workspace("cache-on");
    // Beside the workspace: a workspace that holds sandbox's caches is refused (cli/host-paths.ts).
    const env = { XDG_CACHE_HOME: join(root, "cache-on-xdg-cache") };
    const first = await runSandbox(["run", ...img, "--cache", "sh", "-c", step], { cwd: dir, env });
    const second = await runSandbox(["run", ...img, "--cache", "sh", "-c", step], { cwd: dir, env });
    expect(first.stdout.toString()).toBe("miss\n");
    expect(second.stdout.toString()).toBe("hit\n");
    const path = await runSandbox(["cache", "path"], { cwd: dir, env });
    // This workspace's own cache (test/integration/cache.test.ts: another workspace never sees it).
    expect(path.stdout.toString().trim()).toMatch(new RegExp(`^${join(root, "cache-on-xdg-cache", "sandbox", "workspaces", "cache-on")}-[0-9a-f]{12}$`));
    const clean = await runSandbox(["cache", "clean"], { cwd: dir, env });
    expect(clean.code).toBe(0);
    const third = await runSandbox(["run", ...img, "--cache", "sh", "-c", step], { cwd: dir, env });
    expect(third.stdout.toString()).toBe("miss\n");
  });

  test("without --cache nothing persists", async () => {
    const dir = workspace("cache-off");
    const env = { XDG_CACHE_HOME: join(root, "cache-off-xdg-cache") };
    const plain = step.replace('"$npm_config_cache/pkg.tgz"', '"$HOME/.cache/npm/pkg.tgz"');
    const first = await runSandbox(["run", ...img, "sh", "-c", plain], { cwd: dir, env });
    const second = await runSandbox(["run", ...img, "sh", "-c", plain], { cwd: dir, env });
    expect(first.stdout.toString()).toBe("miss\n");
    expect(second.stdout.toString()).toBe("miss\n");
  });
});

describe("sandbox config", () => {
  test("init writes a commented file, refuses to overwrite, and validate accepts it", async () => {
    const dir = workspace("config-cmd");
    const env = { XDG_CONFIG_HOME: join(dir, "xdg") };
    const init = await runSandbox(["config", "init"], { cwd: dir, env });
    expect(init.code).toBe(0);
    const again = await runSandbox(["config", "init"], { cwd: dir, env });
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("--force");
    const valid = await runSandbox(["config", "validate", join(dir, "xdg", "sandbox", "config.yaml")], { cwd: dir, env });
    expect(valid.code).toBe(0);
    const show = await runSandbox(["config", "show", "--json"], { cwd: dir, env: { ...env, SANDBOX_CONFIG: undefined } });
    const rows = JSON.parse(show.stdout.toString()) as Array<{ key: string; source: string }>;
    expect(rows.find((r) => r.key === "security.memory")?.source).toBe("default");
  });
});

describe("sandbox config show: the credential rules", () => {
  test("yours and the built-ins, with hosts, header and where the value is; never the value, no command run", async () => {
    const dir = workspace("credential-rules");
    const secret = `corp-${Date.now().toString(36)}-secret`;
    const marker = join(dir, "helper-ran");
    const helper = join(dir, "helper.sh");
    writeFileSync(helper, `#!/bin/sh\ntouch '${marker}'\necho ${secret}\n`, { mode: 0o755 });
    writeFileSync(join(dir, "token"), `${secret}\n`);
    mkdirSync(join(dir, "xdg", "sandbox"), { recursive: true });
    const config = join(dir, "xdg", "sandbox", "config.yaml");
    writeFileSync(
      config,
      [
        "credentials:",
        "  - name: corp-api",
        "    hosts: api.corp.example",
        "    header: authorization",
        '    format: "Bearer {value}"',
        `    file: ${join(dir, "token")}`,
        "  - name: vault",
        "    hosts: vault.corp.example",
        "    header: x-vault-token",
        `    command: [${helper}]`,
        "",
      ].join("\n"),
    );
    const env = { XDG_CONFIG_HOME: join(dir, "xdg"), ANTHROPIC_API_KEY: secret };
    const show = await runSandbox(["config", "show"], { cwd: dir, env });
    expect(show.code).toBe(0);
    const text = show.stdout.toString();
    expect(text).toMatch(new RegExp(`^credential rule corp-api +api\\.corp\\.example: authorization: Bearer \\{value\\}, from file ${join(dir, "token").replace(/[.]/g, "\\.")} +\\(${config.replace(/[.]/g, "\\.")}\\)$`, "m"));
    expect(text).toMatch(/^credential rule vault +vault\.corp\.example: x-vault-token: \{value\}, from `.*helper\.sh` if it prints a value \(a command: not run here/m);
    expect(text).toMatch(/^credential rule anthropic-api-key +api\.anthropic\.com: x-api-key: \{value\}, from \$ANTHROPIC_API_KEY +\(built-in\)$/m);
    expect(text).toMatch(/^credential rule openai-api-key +api\.openai\.com: authorization: Bearer \{value\}, no value on this host \(\$OPENAI_API_KEY is not set\) +\(built-in\)$/m);

    const json = await runSandbox(["config", "show", "--json"], { cwd: dir, env });
    const rows = JSON.parse(json.stdout.toString()) as Array<{ key: string; source: string; credential?: Record<string, unknown> }>;
    expect(rows.find((r) => r.key === "credential rule corp-api")?.credential).toMatchObject({ rule: "corp-api", hosts: ["api.corp.example"], header: "authorization", value: "available", from: `file ${join(dir, "token")}`, origin: config });
    expect(rows.find((r) => r.key === "credential rule github-git")?.credential).toMatchObject({ origin: "built-in", format: "Basic base64(x-access-token:{value})" });
    expect(existsSync(marker)).toBe(false);
    expect(`${text}${json.stdout.toString()}${show.stderr}`).not.toContain(secret);
  });
});

/**
 * An agent's own login in its persisted state (issue #15: "the persisted
 * agent state keeps settings and history, not tokens"): while the egress
 * proxy adds the agent's credential, the login file in the state folder
 * (Claude Code's .credentials.json) is covered by an empty read-only file.
 * Inside, it reads empty, and writing, removing or replacing it fails; the
 * state's other files work as always; on the host the saved login is left
 * untouched, and a file that was not there is made for the run and gone
 * after it. Without a rule serving the agent the state is untouched.
 *
 * On Docker end to end through `sandbox run` (public mode, the agents'
 * default, with ANTHROPIC_API_KEY set: no request is made, so no upstream is
 * needed). The proxy cannot run on Podman, so no rule ever serves an agent
 * there; the mechanism itself (a plan with hidden files, made and removed
 * mountpoints) runs on both engines through executeRun.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CONTAINER_HOME } from "../../src/core/plan.ts";
import { credentialStandIn } from "../../src/core/state-credentials.ts";
import { hiddenLoginSettings, runPlanDirect } from "../helpers/direct-run.ts";
import { IS_PODMAN, runSandbox, TEST_IMAGE } from "../helpers/sandbox.ts";

const root = mkdtempSync(join(tmpdir(), "sandbox-state-creds-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const TOKEN = `{"claudeAiOauth":{"accessToken":"sk-ant-oat01-${randomBytes(8).toString("hex")}"}}\n`;
const SETTINGS = '{"theme":"dark"}\n';
const KEY = `sk-ant-test-${randomBytes(8).toString("hex")}`;

/** Inside: what the login file holds, whether it can be written, removed or replaced, and the state's other files at work. */
const SCRIPT = [
  "cd ~/.claude || exit 9",
  'echo "content=[$(cat .credentials.json 2>&1)]"',
  "(echo stolen > .credentials.json) 2>/dev/null && echo write=ok || echo write=refused",
  "rm -f .credentials.json 2>/dev/null; [ -e .credentials.json ] && echo remove=refused || echo remove=ok",
  "echo new > t; (mv -f t .credentials.json) 2>/dev/null && echo replace=ok || echo replace=refused; rm -f t",
  'echo "settings=$(cat settings.json)"',
  "echo turn-2 >> history.jsonl && echo history=appended",
  'echo "key=$ANTHROPIC_API_KEY"',
].join("\n");

const HIDDEN = ["content=[]", "write=refused", "remove=refused", "replace=refused", `settings=${SETTINGS.trim()}`, "history=appended"];

/** A state folder as an earlier run left it: settings, history and a login. */
function seed(dir: string, login = true): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "settings.json"), SETTINGS);
  writeFileSync(join(dir, "history.jsonl"), "turn-1\n");
  if (login) writeFileSync(join(dir, ".credentials.json"), TOKEN, { mode: 0o600 });
}

function lines(out: string): string[] {
  return out.trim().split("\n");
}

describe.skipIf(IS_PODMAN)("sandbox run: the agent's login hidden while the proxy adds its key (Docker)", () => {
  const work = join(root, "cli-work");
  const xdg = join(root, "cli-state");
  mkdirSync(work, { recursive: true });
  const stateDir = () => {
    const dir = join(xdg, "sandbox", "agents", "claude");
    const [key] = existsSync(dir) ? readdirSync(dir).filter((n) => !n.endsWith(".workspace")) : [];
    return join(dir, key ?? "none");
  };
  const run = (extra: string[], env: Record<string, string | undefined>) =>
    runSandbox(["run", "--agent", "claude", "--image", TEST_IMAGE, ...extra, "sh", "-c", SCRIPT], { cwd: work, env: { XDG_STATE_HOME: xdg, ...env }, timeoutMs: 110_000 });

  test("a saved login reads empty and cannot be changed; settings and history work; the host's file is untouched", async () => {
    // A first run makes the state folder (no key: nothing hidden), then it is seeded as an earlier login would leave it.
    const first = await runSandbox(["run", "--agent", "claude", "--image", TEST_IMAGE, "true"], { cwd: work, env: { XDG_STATE_HOME: xdg } });
    expect(first.code).toBe(0);
    seed(stateDir());

    const r = await run([], { ANTHROPIC_API_KEY: KEY });
    if (r.code !== 0) console.error(r.stderr);
    expect(r.code).toBe(0);
    const out = lines(r.stdout.toString());
    for (const line of HIDDEN) expect(out).toContain(line);
    expect(out).toContain("key=sandbox-proxy-managed");
    expect(r.stderr).toContain(
      "sandbox: credentials: Claude Code's own login in its state folder (.credentials.json) is hidden in this run, as the proxy adds its credential (rule anthropic-api-key)",
    );

    // On the host: the login as it was, the settings, the history with this run's turn.
    expect(readFileSync(join(stateDir(), ".credentials.json"), "utf8")).toBe(TOKEN);
    expect(readFileSync(join(stateDir(), "settings.json"), "utf8")).toBe(SETTINGS);
    expect(readFileSync(join(stateDir(), "history.jsonl"), "utf8")).toBe("turn-1\nturn-2\n");
    expect(existsSync(join(stateDir(), "t"))).toBe(false);
    expect(readFileSync(credentialStandIn(join(xdg, "sandbox")), "utf8")).toBe("");
  }, 120_000);

  test("no login saved: the file is made for the run and gone after it; --quiet hides the line", async () => {
    rmSync(join(stateDir(), ".credentials.json"));
    const r = await run(["--quiet"], { ANTHROPIC_API_KEY: KEY });
    expect(r.code).toBe(0);
    for (const line of HIDDEN) expect(lines(r.stdout.toString())).toContain(line);
    expect(r.stderr).toBe("");
    expect(readdirSync(stateDir()).sort()).toEqual(["history.jsonl", "settings.json"]);
  }, 120_000);

  test("no rule serves the agent (no key on the host): the state is untouched, a saved login works as before", async () => {
    writeFileSync(join(stateDir(), ".credentials.json"), TOKEN, { mode: 0o600 });
    const r = await run([], { ANTHROPIC_API_KEY: undefined });
    expect(r.code).toBe(0);
    const out = lines(r.stdout.toString());
    expect(out).toContain(`content=[${TOKEN.trim()}]`);
    expect(out).toContain("write=ok");
    expect(r.stderr).not.toContain("is hidden in this run");
    // The run wrote, then removed, then replaced it: the agent's own writes land, as without sandbox.
    expect(readFileSync(join(stateDir(), ".credentials.json"), "utf8")).toBe("new\n");
  }, 120_000);

  test("--dry-run shows the hidden file and its mount", async () => {
    const r = await runSandbox(["run", "--dry-run", "--agent", "claude", "--image", TEST_IMAGE, "true"], { cwd: work, env: { XDG_STATE_HOME: xdg, ANTHROPIC_API_KEY: KEY } });
    expect(r.code).toBe(0);
    const view = JSON.parse(r.stdout.toString()) as { security: { hiddenCredentialFiles: unknown }; create: { HostConfig: { Mounts: Array<Record<string, unknown>> } } };
    expect(view.security.hiddenCredentialFiles).toEqual({ files: [`${CONTAINER_HOME}/.claude/.credentials.json`], rules: ["anthropic-api-key"] });
    expect(view.create.HostConfig.Mounts).toContainEqual({ Type: "bind", Source: credentialStandIn(join(xdg, "sandbox")), Target: `${CONTAINER_HOME}/.claude/.credentials.json`, ReadOnly: true });
    const bare = await runSandbox(["run", "--dry-run", "--agent", "claude", "--image", TEST_IMAGE, "true"], { cwd: work, env: { XDG_STATE_HOME: xdg } });
    expect((JSON.parse(bare.stdout.toString()) as { security: { hiddenCredentialFiles: unknown } }).security.hiddenCredentialFiles).toBeNull();
  });

  test("a link in the login file's place is refused (exit 125), nothing followed", async () => {
    const target = join(root, "elsewhere.json");
    writeFileSync(target, "host file\n");
    rmSync(join(stateDir(), ".credentials.json"), { force: true });
    symlinkSync(target, join(stateDir(), ".credentials.json"));
    const r = await run([], { ANTHROPIC_API_KEY: KEY });
    expect(r.code).toBe(125);
    expect(r.stderr).toContain(".credentials.json is a symbolic link, which sandbox does not follow");
    expect(r.stdout.toString()).toBe("");
    expect(readFileSync(target, "utf8")).toBe("host file\n");
    rmSync(join(stateDir(), ".credentials.json"));
  }, 60_000);
});

describe.skipIf(!IS_PODMAN)("sandbox run on Podman: no proxy, so nothing is hidden", () => {
  test("the key is not provided (bridge fallback), and a saved login stays the agent's to use", async () => {
    const work = join(root, "podman-work");
    const xdg = join(root, "podman-state");
    mkdirSync(work, { recursive: true });
    const first = await runSandbox(["run", "--agent", "claude", "--image", TEST_IMAGE, "true"], { cwd: work, env: { XDG_STATE_HOME: xdg } });
    expect(first.code).toBe(0);
    const agentDir = join(xdg, "sandbox", "agents", "claude");
    const state = join(agentDir, readdirSync(agentDir).find((n) => !n.endsWith(".workspace")) ?? "none");
    seed(state);
    const r = await runSandbox(["run", "--agent", "claude", "--image", TEST_IMAGE, "sh", "-c", 'echo "content=[$(cat ~/.claude/.credentials.json)]"'], {
      cwd: work,
      env: { XDG_STATE_HOME: xdg, ANTHROPIC_API_KEY: KEY },
    });
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe(`content=[${TOKEN.trim()}]\n`);
    expect(r.stderr).toContain("ANTHROPIC_API_KEY on this host is not provided to the container");
    expect(r.stderr).not.toContain("is hidden in this run");
  }, 60_000);
});

describe(`the hiding itself, on ${IS_PODMAN ? "Podman" : "Docker"} (executeRun with a plan that hides the login)`, () => {

  async function runHidden(state: string, stateRoot: string, workspace: string): Promise<{ code: number; out: string; err: string }> {
    mkdirSync(join(stateRoot, "stand-ins"), { recursive: true });
    writeFileSync(credentialStandIn(stateRoot), "");
    const settings = hiddenLoginSettings(state, stateRoot);
    return runPlanDirect(["sh", "-c", SCRIPT], settings, { workspace, stateDir: stateRoot });
  }

  test("a saved login: empty and unchangeable inside, untouched on the host; a missing one: made for the run, removed after", async () => {
    const base = mkdtempSync(join(root, "direct-"));
    const workspace = join(base, "work");
    const stateRoot = join(base, "state");
    const state = join(stateRoot, "agents", "claude", "work-0");
    mkdirSync(workspace, { recursive: true });
    seed(state);

    const saved = await runHidden(state, stateRoot, workspace);
    if (saved.code !== 0) console.error(saved.err);
    expect(saved.code).toBe(0);
    for (const line of HIDDEN) expect(lines(saved.out)).toContain(line);
    expect(readFileSync(join(state, ".credentials.json"), "utf8")).toBe(TOKEN);
    expect(readFileSync(join(state, "history.jsonl"), "utf8")).toBe("turn-1\nturn-2\n");

    rmSync(join(state, ".credentials.json"));
    const missing = await runHidden(state, stateRoot, workspace);
    expect(missing.code).toBe(0);
    for (const line of HIDDEN) expect(lines(missing.out)).toContain(line);
    expect(readdirSync(state).sort()).toEqual(["history.jsonl", "settings.json"]);
  }, 120_000);
});

import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkAuditPath, checkWorkspacePlace, resolveExisting } from "../../src/cli/host-paths.ts";
import { SandboxError, UsageError } from "../../src/core/errors.ts";
import { buildRunPlan, type RunSettings } from "../../src/core/plan.ts";
import { testSettings } from "../helpers/run-settings.ts";

const root = realpathSync(mkdtempSync(join(tmpdir(), "sandbox-host-paths-")));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function refusal(fn: () => unknown): SandboxError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SandboxError);
    return err as SandboxError;
  }
  throw new Error("expected a refusal");
}

describe("dangerous workspaces", () => {
  const home = join(root, "home");
  mkdirSync(join(home, "project"), { recursive: true });
  const homeLink = join(root, "home-link");
  symlinkSync(home, homeLink);

  test("the user's home is refused (exit 125) with the flag named, also when $HOME is a symlink to it", () => {
    const err = refusal(() => checkWorkspacePlace(home, {}, homeLink, false));
    expect(err).toBeInstanceOf(UsageError);
    expect(err.exitCode).toBe(125);
    expect(err.message).toStartWith(`refusing to use ${home} as the workspace: it is your home folder`);
    expect(err.hint).toContain("--allow-dangerous-workspace");
  });

  test("with --allow-dangerous-workspace it runs, with a warning", () => {
    expect(checkWorkspacePlace(home, {}, home, true)).toStartWith(`--allow-dangerous-workspace: the workspace ${home} is your home folder`);
  });

  test("/, /etc, /run and /var/run (resolved: /var/run is a link to /run on most systems) are refused; $XDG_RUNTIME_DIR too", () => {
    for (const dir of ["/", "/etc", "/run", resolveExisting("/var/run")]) {
      expect(refusal(() => checkWorkspacePlace(dir, {}, home, false)).message).toStartWith(`refusing to use ${dir} as the workspace`);
    }
    const runtime = join(root, "runtime");
    mkdirSync(runtime);
    expect(refusal(() => checkWorkspacePlace(runtime, { XDG_RUNTIME_DIR: runtime }, home, false)).message).toContain("$XDG_RUNTIME_DIR");
  });

  test("a project folder (in the home, or beside it) is fine", () => {
    expect(checkWorkspacePlace(join(home, "project"), {}, home, false)).toBeUndefined();
    const beside = join(root, "beside");
    mkdirSync(beside);
    expect(checkWorkspacePlace(beside, {}, home, false)).toBeUndefined();
  });

  test("a folder that holds sandbox's own state or caches is refused: ~/.local, a project with XDG_STATE_HOME or XDG_CACHE_HOME inside, a parent of the home", () => {
    mkdirSync(join(home, ".local/state/sandbox"), { recursive: true });
    const local = refusal(() => checkWorkspacePlace(join(home, ".local"), {}, home, false));
    expect(local.exitCode).toBe(125);
    expect(local.message).toContain(`it is the folder that holds sandbox's own state (${join(home, ".local/state/sandbox")}`);
    expect(local.hint).toContain("--allow-dangerous-workspace");
    const project = join(home, "project");
    expect(refusal(() => checkWorkspacePlace(project, { XDG_STATE_HOME: join(project, "state") }, home, false)).message).toContain("sandbox's own state");
    expect(refusal(() => checkWorkspacePlace(project, { XDG_CACHE_HOME: join(project, ".cache") }, home, false)).message).toContain("sandbox's caches");
    // The state folder reached through a link is the same folder.
    mkdirSync(join(project, "state"));
    const linked = join(root, "linked-state");
    symlinkSync(join(project, "state"), linked);
    expect(refusal(() => checkWorkspacePlace(project, { XDG_STATE_HOME: linked }, home, false)).message).toContain("sandbox's own state");
    expect(refusal(() => checkWorkspacePlace(root, {}, home, false)).message).toContain("sandbox's own state");
    expect(checkWorkspacePlace(join(home, ".local"), {}, home, true)).toContain("sandbox's own state");
  });
});

describe("the --audit path", () => {
  const ws = join(root, "ws");
  const cache = join(root, "cache");
  mkdirSync(ws);
  mkdirSync(cache);
  const plan = (audit: string, over: Partial<RunSettings> = {}) =>
    buildRunPlan(
      ["sh"],
      testSettings({ egress: { allow: ["a.test"], agentDefaults: [], audit, hostsFile: undefined }, ...over }),
      { workspace: ws, uid: 1000, gid: 1000, env: {}, stdinIsTTY: false, stdoutIsTTY: false, version: "0", now: new Date(0), randomId: "0123abcd" },
    );

  test("inside the workspace it is refused (exit 125), naming both and suggesting a path beside the workspace", () => {
    const err = refusal(() => checkAuditPath(plan(join(ws, "egress.jsonl"))));
    expect(err.exitCode).toBe(125);
    expect(err.message).toStartWith(`refusing --audit ${join(ws, "egress.jsonl")}: it is inside the workspace ${ws}.`);
    expect(err.hint).toBe(`Pass --audit a path outside the workspace, e.g. --audit ${join(root, "ws-egress.jsonl")}.`);
    // Deeper, not yet existing, or reached through a link from outside: the same.
    expect(() => checkAuditPath(plan(join(ws, "logs/new/egress.jsonl")))).toThrow("inside the workspace");
    symlinkSync(ws, join(root, "ws-link"));
    expect(() => checkAuditPath(plan(join(root, "ws-link", "egress.jsonl")))).toThrow("inside the workspace");
  });

  test("--read-only-workspace and copy mode do not change that (the record must not live where the command ran)", () => {
    expect(() => checkAuditPath(plan(join(ws, "a.jsonl"), { readOnlyWorkspace: true }))).toThrow("inside the workspace");
    expect(() => checkAuditPath(plan(join(ws, "a.jsonl"), { workspaceMode: "copy" }))).toThrow("inside the workspace");
  });

  test("inside another folder mounted read-write (a package cache) it is refused; a read-only one is fine", () => {
    const rw = [{ Type: "bind" as const, Source: cache, Target: "/home/sandbox/.cache" }];
    expect(() => checkAuditPath(plan(join(cache, "a.jsonl"), { extraMounts: rw }))).toThrow(`it is inside ${cache}, which is mounted read-write into the container`);
    expect(() => checkAuditPath(plan(join(cache, "a.jsonl"), { extraMounts: [{ ...rw[0]!, ReadOnly: true }] }))).not.toThrow();
  });

  test("a symlink is refused wherever it is, and its target keeps its content; a plain path outside is fine", () => {
    const bashrc = join(root, "bashrc");
    writeFileSync(bashrc, "# mine\n");
    const link = join(root, "audit-link.jsonl");
    symlinkSync(bashrc, link);
    const err = refusal(() => checkAuditPath(plan(link)));
    expect(err.exitCode).toBe(125);
    expect(err.message).toContain(`it is a symbolic link (to ${bashrc})`);
    expect(readFileSync(bashrc, "utf8")).toBe("# mine\n");
    expect(() => checkAuditPath(plan(join(root, "audit.jsonl")))).not.toThrow();
  });

  test("no egress, nothing to check", () => {
    expect(() => checkAuditPath(plan("unused", { egress: undefined }))).not.toThrow();
  });
});

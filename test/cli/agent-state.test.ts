/**
 * The agent state listing and removal on a real (temporary) disk, no engine:
 * what is listed, and what a removal checks again right before acting.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { diskUsage, listAgentState, readMarker, removeAgentState, resolveWorkspaceArg } from "../../src/cli/agent-state.ts";
import { workspaceKey } from "../../src/core/persistence.ts";
import { planState, type StateTarget } from "../../src/core/state-plan.ts";

let root: string;
let stateRoot: string;
let agents: string;

beforeEach(() => {
  root = realpathSync(mkdtempSync(join(tmpdir(), "sandbox-agent-state-unit-")));
  stateRoot = join(root, "state", "sandbox");
  agents = join(stateRoot, "agents");
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** A state folder as a run leaves it, for a workspace that may or may not exist. */
function plant(agent: string, workspace: string, files: Record<string, string> = { f: "x\n" }): string {
  const key = workspaceKey(workspace, (t) => createHash("sha256").update(t).digest("hex"));
  const dir = join(agents, agent, key);
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  writeFileSync(`${dir}.workspace`, `${workspace}\n`);
  return dir;
}

const NO_MOUNTS = new Map<string, string>();

function targets(): StateTarget[] {
  return planState(listAgentState(stateRoot, { sizes: false }).entries, { olderThanMs: undefined, now: Date.now() }).remove;
}

describe("listAgentState", () => {
  test("nothing yet is an empty list", () => {
    expect(listAgentState(stateRoot, { sizes: true })).toEqual({ entries: [], notes: [] });
  });
  test("folders with their recorded workspace, whether it exists, size and last use", () => {
    const ws = join(root, "ws");
    mkdirSync(ws);
    const kept = plant("claude", ws, { "a.json": "12345" });
    const gone = plant("claude", join(root, "gone"));
    const { entries, notes } = listAgentState(stateRoot, { sizes: true });
    expect(notes).toEqual([]);
    const byPath = new Map(entries.map((e) => [e.path, e]));
    expect(byPath.get(kept)).toMatchObject({ agent: "claude", kind: "directory", markerKind: "file", workspace: ws, workspaceExists: true });
    expect(byPath.get(gone)).toMatchObject({ workspace: join(root, "gone"), workspaceExists: false });
    expect(byPath.get(kept)?.sizeBytes).toBe(diskUsage(kept));
    expect(byPath.get(kept)?.lastUsedMs).toBeGreaterThan(Date.now() - 60_000);
  });
  test("symlinks are listed as such, never followed; a symlinked agent folder is a note", () => {
    const outside = join(root, "outside");
    mkdirSync(outside);
    writeFileSync(join(outside, "precious"), "keep me");
    mkdirSync(join(agents, "claude"), { recursive: true });
    symlinkSync(outside, join(agents, "claude", "evil-aaaaaaaaaaaa"));
    symlinkSync(join(outside, "precious"), join(agents, "claude", "evil-bbbbbbbbbbbb.workspace"));
    symlinkSync(outside, join(agents, "codex"));
    const { entries, notes } = listAgentState(stateRoot, { sizes: true });
    expect(entries.map((e) => [e.key, e.kind, e.markerKind, e.workspace, e.sizeBytes])).toEqual([
      ["evil-aaaaaaaaaaaa", "symlink", "missing", null, null],
      ["evil-bbbbbbbbbbbb", "missing", "symlink", null, null],
    ]);
    expect(notes).toEqual([`${join(agents, "codex")} is a symlink: not followed`]);
  });
  test("a marker that is not a plain path is not trusted", () => {
    const dir = plant("claude", join(root, "gone"));
    writeFileSync(`${dir}.workspace`, "not a path");
    expect(readMarker(`${dir}.workspace`)).toBeNull();
    expect(targets()).toEqual([]);
  });
});

describe("removeAgentState", () => {
  test("removes a gone workspace's folder and marker, and nothing a symlink inside points at", () => {
    const outside = join(root, "outside");
    mkdirSync(outside);
    writeFileSync(join(outside, "precious"), "keep me");
    const dir = plant("claude", join(root, "gone"));
    symlinkSync(outside, join(dir, "link-out"));
    const [target] = targets();
    if (!target) throw new Error("nothing planned");
    expect(removeAgentState(stateRoot, target, NO_MOUNTS)).toMatchObject({ outcome: "removed" });
    expect(existsSync(dir)).toBe(false);
    expect(existsSync(`${dir}.workspace`)).toBe(false);
    expect(readFileSync(join(outside, "precious"), "utf8")).toBe("keep me");
  });
  test("re-checks: a folder swapped for a symlink is refused", () => {
    const outside = join(root, "outside");
    mkdirSync(outside);
    writeFileSync(join(outside, "precious"), "keep me");
    const dir = plant("claude", join(root, "gone"));
    const [target] = targets();
    if (!target) throw new Error("nothing planned");
    rmSync(dir, { recursive: true });
    symlinkSync(outside, dir);
    expect(removeAgentState(stateRoot, target, NO_MOUNTS)).toMatchObject({ outcome: "refused", detail: "the state folder became a symlink, not followed" });
    expect(readFileSync(join(outside, "precious"), "utf8")).toBe("keep me");
  });
  test("re-checks: a workspace that came back, a changed marker, a new mount", () => {
    const gone = join(root, "gone");
    const dir = plant("claude", gone);
    const [target] = targets();
    if (!target) throw new Error("nothing planned");
    mkdirSync(gone);
    expect(removeAgentState(stateRoot, target, NO_MOUNTS)).toMatchObject({ outcome: "in use", detail: "its workspace exists again" });
    rmSync(gone, { recursive: true });
    writeFileSync(`${dir}.workspace`, `${join(root, "else")}\n`);
    expect(removeAgentState(stateRoot, target, NO_MOUNTS).outcome).toBe("refused");
    writeFileSync(`${dir}.workspace`, `${gone}\n`);
    expect(removeAgentState(stateRoot, target, new Map([[dir, "sandbox-x"]]))).toMatchObject({ outcome: "in use", detail: "mounted by container sandbox-x" });
    expect(existsSync(dir)).toBe(true);
    expect(removeAgentState(stateRoot, target, NO_MOUNTS).outcome).toBe("removed");
    expect(removeAgentState(stateRoot, target, NO_MOUNTS).outcome).toBe("gone");
  });
  test("refuses a target that is not exactly a folder under <stateRoot>/agents/<agent>/", () => {
    const dir = plant("claude", join(root, "gone"));
    const [target] = targets();
    if (!target) throw new Error("nothing planned");
    for (const bad of [{ path: root }, { key: ".." }, { agent: "../.." }, { marker: join(root, "x.workspace") }]) {
      expect(removeAgentState(stateRoot, { ...target, ...bad }, NO_MOUNTS).outcome).toBe("refused");
    }
    expect(existsSync(dir)).toBe(true);
  });
});

describe("resolveWorkspaceArg", () => {
  test("an existing directory by its real path; a gone one under its parent's real path", () => {
    const real = join(root, "real");
    mkdirSync(real);
    symlinkSync(real, join(root, "alias"));
    const hash = (t: string) => createHash("sha256").update(t).digest("hex");
    expect(resolveWorkspaceArg("alias", root)).toEqual({ path: real, key: workspaceKey(real, hash) });
    expect(resolveWorkspaceArg(".", real).path).toBe(real);
    expect(resolveWorkspaceArg("alias/gone/deeper", root).path).toBe(join(real, "gone", "deeper"));
  });
});

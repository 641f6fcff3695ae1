import { describe, expect, test } from "bun:test";
import { finalBody, wantsReview, type RunFacts } from "../../src/core/container-body.ts";
import type { MountSpec } from "../../src/core/engine-api.ts";
import { UsageError } from "../../src/core/errors.ts";
import { buildRunPlan, type RunSettings } from "../../src/core/plan.ts";
import { testSettings } from "../helpers/run-settings.ts";

/** Review mode's create body (core/container-body.ts reviewBody, docs/review.md). */
const host = {
  workspace: "/home/me/project",
  uid: 1000,
  gid: 1000,
  env: {},
  stdinIsTTY: false,
  stdoutIsTTY: false,
  version: "0.1.0",
  now: new Date("2026-01-01T00:00:00Z"),
  randomId: "0123abcd",
};
const plan = (over: Partial<RunSettings> = {}) => buildRunPlan(["sh"], testSettings({ workspaceMode: "review", ...over }), host);
const guardMounts: MountSpec[] = [
  { Type: "bind", Source: "/tmp/sandbox-mask-x/empty", Target: "/work/.env", ReadOnly: true },
  { Type: "bind", Source: "/home/me/project/.git/hooks", Target: "/work/.git/hooks", ReadOnly: true },
  { Type: "bind", Source: "/home/me/project/.git", Target: "/work/.git", ReadOnly: false },
];
const review = { upper: "/s/changes/x/upper", work: "/s/changes/x/work" };
const docker: RunFacts = { flavor: "docker", engineLocal: true, guardMounts, review };

describe("review mode's body", () => {
  test("Docker: the workspace is an overlay volume's lower layer, the change set its upper; no bind of the workspace", () => {
    const { body, workspaceMode } = finalBody(plan(), docker);
    expect(workspaceMode).toBe("review");
    const [overlay] = body.HostConfig.Mounts;
    expect(overlay).toEqual({
      Type: "volume",
      Target: "/work",
      VolumeOptions: { DriverConfig: { Name: "local", Options: { type: "overlay", device: "overlay", o: "lowerdir=/home/me/project,upperdir=/s/changes/x/upper,workdir=/s/changes/x/work,redirect_dir=off,metacopy=off,index=off" } } },
    });
    expect(body.HostConfig.Mounts.some((m) => m.Type === "bind" && m.Source === "/home/me/project")).toBe(false);
    expect(body.HostConfig.Binds).toBeUndefined();
    expect(body.HostConfig.AutoRemove).toBe(true);
  });

  test("the guard's read-only mounts stay on top; its read-write pins, binds of the host's folders, do not", () => {
    const targets = finalBody(plan(), docker).body.HostConfig.Mounts.map((m) => m.Target);
    expect(targets).toContain("/work/.env");
    expect(targets).toContain("/work/.git/hooks");
    expect(targets).not.toContain("/work/.git");
  });

  test("Podman: its overlay bind in Binds, the session removes the container", () => {
    const { body } = finalBody(plan(), { ...docker, flavor: "podman", seccompPath: "/s/seccomp.json" });
    expect(body.HostConfig.Binds).toEqual(["/home/me/project:/work:O,upperdir=/s/changes/x/upper,workdir=/s/changes/x/work"]);
    expect(body.HostConfig.Mounts.some((m) => m.Target === "/work")).toBe(false);
    expect(body.HostConfig.AutoRemove).toBe(false);
  });

  test("an engine elsewhere cannot mount this machine's folder: copy mode's body, its changes going to the change set", () => {
    const final = finalBody(plan(), { ...docker, engineLocal: false });
    expect(final.workspaceMode).toBe("copy");
    expect(final.reviewByCopy).toBe(true);
    expect(final.body.HostConfig.Mounts[0]).toEqual({ Type: "volume", Target: "/work", VolumeOptions: { NoCopy: true } });
    expect(final.copyExcluded).toContain(".env");
    expect(finalBody(buildRunPlan(["sh"], testSettings({ workspaceMode: "copy" }), host), { ...docker, engineLocal: false }).reviewByCopy).toBeUndefined();
  });

  test("a kernel without overlayfs: copy mode's mechanics too", () => {
    const final = finalBody(plan(), { ...docker, noOverlay: true });
    expect(final.workspaceMode).toBe("copy");
    expect(final.reviewByCopy).toBe(true);
  });

  test("a path that mount options cannot carry is refused", () => {
    const odd = buildRunPlan(["sh"], testSettings({ workspaceMode: "review" }), { ...host, workspace: "/home/me/a,b" });
    expect(() => finalBody(odd, docker)).toThrow(/comma, colon or backslash/);
  });

  test("a read-only workspace has nothing to review: bind mode", () => {
    expect(wantsReview(plan({ readOnlyWorkspace: true }))).toBe(false);
    expect(finalBody(plan({ readOnlyWorkspace: true }), docker).workspaceMode).toBe("bind");
  });

  test("--dry-run without a change set shows placeholders", () => {
    const { body } = finalBody(plan(), { ...docker, review: undefined });
    expect(JSON.stringify(body.HostConfig.Mounts[0])).toContain("<state>/sandbox/changes/<id>/upper");
  });
});

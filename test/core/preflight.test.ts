import { describe, expect, test } from "bun:test";
import { SecurityError, UsageError } from "../../src/core/errors.ts";
import { buildRunPlan, type RunSettings } from "../../src/core/plan.ts";
import { DOCKER, plan, settings } from "../helpers/preflight-fixtures.ts";
import {
  enforcePreflight,
  evaluatePreflight,
  parseInsecureAllow,
  PROTECTIONS,
  securityOptionNames,
  type Check,
  type EngineInfo,
} from "../../src/core/preflight.ts";

const verdict = (checks: Check[], name: string) => checks.find((c) => c.protection === name);

describe("evaluatePreflight", () => {
  test("a healthy engine applies everything the default plan asks for", () => {
    const checks = evaluatePreflight(DOCKER, plan());
    expect(checks.map((c) => c.protection)).toEqual([...PROTECTIONS]);
    expect(checks.filter((c) => c.required && !c.ok)).toEqual([]);
    expect(verdict(checks, "cpu-limit")?.required).toBe(false);
    expect(enforcePreflight(checks, [])).toEqual({ warnings: [] });
  });

  test("no seccomp in SecurityOptions: refused with 125, naming seccomp, unless allowed", () => {
    const checks = evaluatePreflight({ ...DOCKER, SecurityOptions: ["name=apparmor", "name=cgroupns"] }, plan());
    expect(verdict(checks, "seccomp")).toMatchObject({ required: true, ok: false });
    let error: unknown;
    try {
      enforcePreflight(checks, []);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(SecurityError);
    expect((error as SecurityError).exitCode).toBe(125);
    expect((error as SecurityError).message).toContain("seccomp");
    expect((error as SecurityError).hint).toContain("--insecure-allow seccomp");
    const allowed = enforcePreflight(checks, ["seccomp"]);
    expect(allowed.warnings).toHaveLength(1);
    expect(allowed.warnings[0]).toContain("running without seccomp");
  });

  test("seccomp unconfined on purpose is not required", () => {
    const checks = evaluatePreflight({ ...DOCKER, SecurityOptions: [] }, plan({ seccomp: { kind: "unconfined" } }));
    expect(verdict(checks, "seccomp")?.required).toBe(false);
    expect(() => enforcePreflight(checks, [])).not.toThrow();
  });

  test("each missing cgroup controller is named; several at once are all listed", () => {
    const checks = evaluatePreflight({ ...DOCKER, MemoryLimit: false, SwapLimit: false, PidsLimit: false }, plan());
    expect(() => enforcePreflight(checks, [])).toThrow(/memory-limit, swap-limit, pids-limit/);
    expect(() => enforcePreflight(checks, ["memory-limit", "pids-limit"])).toThrow(/swap-limit/);
    expect(enforcePreflight(checks, ["memory-limit", "swap-limit", "pids-limit"]).warnings).toHaveLength(3);
  });

  test("a CPU limit is checked only when --cpus asks for one", () => {
    const info = { ...DOCKER, CpuCfsQuota: false };
    expect(() => enforcePreflight(evaluatePreflight(info, plan()), [])).not.toThrow();
    expect(() => enforcePreflight(evaluatePreflight(info, plan({ cpus: 1.5 })), [])).toThrow(/cpu-limit/);
  });

  test("an unknown runtime, an old kernel and fields the engine leaves out are not trusted", () => {
    expect(verdict(evaluatePreflight({ ...DOCKER, DefaultRuntime: "sysbox-runc" }, plan()), "runtime")).toMatchObject({ ok: false });
    expect(verdict(evaluatePreflight({ ...DOCKER, DefaultRuntime: "crun" }, plan()), "runtime")?.ok).toBe(true);
    expect(verdict(evaluatePreflight({ ...DOCKER, DefaultRuntime: "kata-qemu" }, plan()), "runtime")?.ok).toBe(true);
    expect(verdict(evaluatePreflight({ ...DOCKER, KernelVersion: "3.2.0" }, plan()), "no-new-privileges")?.ok).toBe(false);
    expect(verdict(evaluatePreflight({ ...DOCKER, KernelVersion: undefined }, plan()), "no-new-privileges")?.ok).toBe(true);
    const bare = evaluatePreflight({}, plan());
    expect(bare.filter((c) => c.required && !c.ok).map((c) => c.protection)).toEqual(["seccomp", "memory-limit", "swap-limit", "pids-limit", "runtime"]);
  });

  test("Podman's and old engines' SecurityOptions forms", () => {
    expect(securityOptionNames(["name=seccomp,profile=/usr/share/containers/seccomp.json", "name=rootless"])).toEqual(["seccomp", "rootless"]);
    expect(securityOptionNames(["seccomp", "apparmor"])).toEqual(["seccomp", "apparmor"]);
    expect(securityOptionNames(null)).toEqual([]);
  });
});

describe("parseInsecureAllow", () => {
  test("takes repeated and comma-separated names, case-insensitively, once each", () => {
    expect(parseInsecureAllow(["seccomp", "Memory-Limit,swap-limit", "seccomp"])).toEqual(["seccomp", "memory-limit", "swap-limit"]);
  });
  test("an unknown name is a usage error listing the names", () => {
    expect(() => parseInsecureAllow(["everything"])).toThrow(UsageError);
    expect(() => parseInsecureAllow(["everything"])).toThrow(/everything/);
  });
});

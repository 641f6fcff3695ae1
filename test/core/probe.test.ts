import { describe, expect, test } from "bun:test";
import { buildRunPlan, type RunSettings } from "../../src/core/plan.ts";
import { evaluatePreflight, type Check, type EngineInfo } from "../../src/core/preflight.ts";
import { doctorRows, escapeRows, evaluateProbe, parseProbeOutput } from "../../src/core/probe.ts";
import { renderDoctor } from "../../src/cli/commands/doctor.ts";
import { doctorReport } from "../../src/core/doctor-report.ts";
import { DOCKER, plan, settings } from "../helpers/preflight-fixtures.ts";

const verdict = (checks: Check[], name: string) => checks.find((c) => c.protection === name);

/** What the probe printed in a container on Docker 20.10, cgroup v1 (a real run). */
const V1_OUTPUT = `status.CapEff:\t0000000000000000
status.NoNewPrivs:\t1
status.Seccomp:\t2
rootfs=read-only
cgroup.memory/memory.limit_in_bytes=4294967296
cgroup.memory/memory.memsw.limit_in_bytes=4294967296
cgroup.pids/pids.max=512
cgroup.cpu/cpu.cfs_quota_us=-1
cgroup.cpu/cpu.cfs_period_us=100000
mask.file=empty
mask.dir=hidden
git.write=ok
protect.hooks=read-only
protect.config=read-only
protect.rename=refused
probe=done
`;

/** The same on cgroup v2 with --cpus 1.5. */
const V2_OUTPUT = `status.CapEff:\t0000000000000000
status.NoNewPrivs:\t1
status.Seccomp:\t2
rootfs=read-only
cgroup.memory.max=4294967296
cgroup.memory.swap.max=0
cgroup.pids.max=512
cgroup.cpu.max=150000 100000
mask.file=empty
mask.dir=hidden
git.write=ok
protect.hooks=read-only
protect.config=read-only
protect.rename=refused
probe=done
`;

describe("the live probe", () => {
  test("parses key=value lines and /proc status lines", () => {
    const report = parseProbeOutput(V1_OUTPUT);
    expect(report["status.CapEff"]).toBe("0000000000000000");
    expect(report["cgroup.pids/pids.max"]).toBe("512");
    expect(report.probe).toBe("done");
  });

  test("cgroup v1 and v2 outputs show every protection in force", () => {
    const v1 = evaluateProbe(parseProbeOutput(V1_OUTPUT), plan());
    expect(v1.filter((c) => c.required && !c.ok)).toEqual([]);
    expect(verdict(v1, "cpu-limit")?.required).toBe(false);
    const v2 = evaluateProbe(parseProbeOutput(V2_OUTPUT), plan({ cpus: 1.5 }));
    expect(v2.filter((c) => c.required && !c.ok)).toEqual([]);
  });

  test("each gap is caught", () => {
    const broken = V2_OUTPUT.replace("Seccomp:\t2", "Seccomp:\t0")
      .replace("NoNewPrivs:\t1", "NoNewPrivs:\t0")
      .replace("CapEff:\t0000000000000000", "CapEff:\t00000000a80425fb")
      .replace("rootfs=read-only", "rootfs=writable")
      .replace("memory.max=4294967296", "memory.max=max")
      .replace("memory.swap.max=0", "memory.swap.max=max")
      .replace("pids.max=512", "pids.max=max")
      .replace("mask.file=empty", "mask.file=visible")
      .replace("protect.rename=refused", "protect.rename=allowed");
    const checks = evaluateProbe(parseProbeOutput(broken), plan({ cpus: 2 }));
    expect(checks.filter((c) => !c.ok).map((c) => c.protection)).toEqual([
      "seccomp",
      "no-new-privileges",
      "capabilities",
      "read-only-root",
      "memory-limit",
      "swap-limit",
      "pids-limit",
      "cpu-limit",
      "secret-mask",
      "protect",
    ]);
  });

  test("capabilities added on purpose are expected; others are not", () => {
    const withNetBind = V1_OUTPUT.replace("CapEff:\t0000000000000000", "CapEff:\t0000000000000400");
    expect(verdict(evaluateProbe(parseProbeOutput(withNetBind), plan({ capAdd: ["NET_BIND_SERVICE"] })), "capabilities")?.ok).toBe(true);
    expect(verdict(evaluateProbe(parseProbeOutput(withNetBind), plan()), "capabilities")?.ok).toBe(false);
  });

  test("a probe that said nothing proves nothing", () => {
    const checks = evaluateProbe({}, plan());
    expect(checks.filter((c) => c.required && c.ok)).toEqual([]);
  });
});

describe("doctorRows", () => {
  test("active only when the engine and the probe agree; a CPU limit nobody asked for is n/a", () => {
    const rows = doctorRows(evaluatePreflight(DOCKER, plan()), evaluateProbe(parseProbeOutput(V1_OUTPUT), plan()));
    expect(rows.every((r) => r.status !== "inactive")).toBe(true);
    expect(rows.find((r) => r.protection === "cpu-limit")?.status).toBe("n/a");
    const noSeccomp = doctorRows(evaluatePreflight({ ...DOCKER, SecurityOptions: [] }, plan()), evaluateProbe(parseProbeOutput(V1_OUTPUT), plan()));
    expect(noSeccomp.find((r) => r.protection === "seccomp")).toMatchObject({ status: "inactive" });
    const unconfined = doctorRows(evaluatePreflight(DOCKER, plan({ seccomp: { kind: "unconfined" } })), []);
    expect(unconfined.find((r) => r.protection === "seccomp")?.status).toBe("inactive");
  });
});

describe("escapeRows (security.allow in the user's config)", () => {
  test("none by default; ptrace is one row, loosened, naming the config file; the doctor still passes and says so", () => {
    expect(escapeRows(plan(), "default")).toEqual([]);
    const rows = escapeRows(plan({ allow: ["ptrace"] }), "/home/me/.config/sandbox/config.yml");
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ protection: "ptrace", status: "loosened" });
    expect(rows[0]?.why).toContain("security.allow in /home/me/.config/sandbox/config.yml");
    expect(rows[0]?.why).toContain("outside it are not in its PID namespace");

    const all = [...doctorRows(evaluatePreflight(DOCKER, plan()), evaluateProbe(parseProbeOutput(V1_OUTPUT), plan())), ...rows];
    expect(all.every((r) => r.status !== "inactive")).toBe(true);
    const engine = { address: "unix:///var/run/docker.sock", server: "Docker/20.10", version: undefined, apiVersion: "1.41", runtime: "runc", rootless: false, userns: false };
    const ran = { state: "ran", image: "img:1" } as const;
    const text = renderDoctor(doctorReport(engine, all, ran));
    expect(text).toMatch(/ptrace +loosened +allowed by security\.allow/);
    expect(text).toContain("every protection is active, except what your config loosens on purpose");
    expect(text).toContain("loosened on purpose by your config (security.allow): ptrace");
    expect(doctorReport(engine, all, ran)).toMatchObject({ status: "warn", exitCode: 0 });
    expect(renderDoctor(doctorReport(engine, all.slice(0, -1), ran))).not.toContain("loosened");
    expect(doctorReport(engine, all.slice(0, -1), ran)).toMatchObject({ status: "pass", exitCode: 0 });
  });
});

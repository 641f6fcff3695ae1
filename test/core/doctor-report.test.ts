import { describe, expect, test } from "bun:test";
import { renderDoctor } from "../../src/cli/commands/doctor.ts";
import { doctorReport, engineSummary, PROBE_HINT, skippedRows, unreachableReport, type EngineFacts } from "../../src/core/doctor-report.ts";
import { evaluatePreflight } from "../../src/core/preflight.ts";
import { doctorRows, evaluateProbe, parseProbeOutput } from "../../src/core/probe.ts";
import { runcFromComponents } from "../../src/core/runc-check.ts";
import { DOCKER, plan } from "../helpers/preflight-fixtures.ts";

const ENGINE: EngineFacts = { address: "unix:///var/run/docker.sock", server: "Docker/20.10.24+dfsg1 (linux)", version: "20.10.24+dfsg1", apiVersion: "1.41", runtime: "runc", rootless: false, userns: false };

/** A healthy probe's output (Docker 20.10, cgroup v1). */
const PROBE_OK = [
  "status.CapEff:\t0000000000000000",
  "status.NoNewPrivs:\t1",
  "status.Seccomp:\t2",
  "rootfs=read-only",
  "cgroup.memory/memory.limit_in_bytes=4294967296",
  "cgroup.memory/memory.memsw.limit_in_bytes=4294967296",
  "cgroup.pids/pids.max=512",
  "mask.file=empty",
  "mask.dir=hidden",
  "git.write=ok",
  "protect.hooks=read-only",
  "protect.config=read-only",
  "protect.rename=refused",
  "probe=done",
].join("\n");

const engineRows = () => doctorRows(evaluatePreflight(DOCKER, plan()), []);
const probeOnly = () => evaluateProbe({}, plan()).map((c) => c.protection).filter((p) => !engineRows().some((r) => r.protection === p));

describe("sandbox doctor's report (--json and the exit code)", () => {
  test("every check passes: status pass, exit 0; the engine is the first check", () => {
    const report = doctorReport(ENGINE, doctorRows(evaluatePreflight(DOCKER, plan()), evaluateProbe(parseProbeOutput(PROBE_OK), plan())), { state: "ran", image: "busybox" });
    expect(report.status).toBe("pass");
    expect(report.exitCode).toBe(0);
    expect(report.checks[0]).toEqual({ id: "engine", status: "pass", detail: "Docker 20.10.24+dfsg1 (API 1.41) at unix:///var/run/docker.sock, rootful, runtime runc" });
    const ids = report.checks.map((c) => c.id);
    for (const id of ["seccomp", "no-new-privileges", "memory-limit", "swap-limit", "pids-limit", "runtime", "capabilities", "read-only-root", "secret-mask", "protect", "probe"]) expect(ids).toContain(id);
    expect(report.checks.find((c) => c.id === "cpu-limit")?.status).toBe("skip");
    expect(report.checks.filter((c) => c.id !== "cpu-limit").every((c) => c.status === "pass")).toBe(true);
  });

  test("no probe image: the engine's checks stand, the probe's protections are skipped, status warn, exit 0", () => {
    const rows = [...engineRows(), ...skippedRows(probeOnly())];
    const report = doctorReport(ENGINE, rows, { state: "skipped", image: "nosuch/probe:1", why: 'image "nosuch/probe:1" is not present locally and pulling it failed: no such host' });
    expect(report.status).toBe("warn");
    expect(report.exitCode).toBe(0);
    const status = Object.fromEntries(report.checks.map((c) => [c.id, c.status]));
    expect(status).toMatchObject({ seccomp: "pass", "pids-limit": "pass", capabilities: "skip", "read-only-root": "skip", "secret-mask": "skip", protect: "skip", probe: "skip" });
    expect(report.checks.find((c) => c.id === "probe")?.detail).toEndWith(PROBE_HINT);

    const text = renderDoctor(report);
    expect(text).toContain(`probe: skipped, no image for it: ${PROBE_HINT}`);
    expect(text).toMatch(/^seccomp +active /m);
    expect(text).toMatch(/^capabilities +skipped +not checked: needs the live probe/m);
    expect(text).toContain("the engine's checks pass; 4 protection(s) not checked without the live probe");
    expect(text).not.toContain("every protection is active");
  });

  test("a protection the engine lacks fails the report (exit 1), skipped probe or not; so does a probe that failed", () => {
    const noSeccomp = doctorRows(evaluatePreflight({ ...DOCKER, SecurityOptions: [] }, plan()), []);
    const skipped = doctorReport(ENGINE, [...noSeccomp, ...skippedRows(probeOnly())], { state: "skipped", image: "x", why: "no image" });
    expect(skipped).toMatchObject({ status: "fail", exitCode: 1 });
    expect(skipped.checks.find((c) => c.id === "seccomp")?.status).toBe("fail");
    const failed = doctorReport(ENGINE, engineRows(), { state: "failed", image: "x", why: "the probe exited 2: boom" });
    expect(failed).toMatchObject({ status: "fail", exitCode: 1 });
    expect(failed.checks.at(-1)).toEqual({ id: "probe", status: "fail", detail: "the probe exited 2: boom" });
  });

  test("an unreachable engine: one failed check, exit 125", () => {
    expect(unreachableReport("cannot reach the container engine at unix:///x.sock: ENOENT")).toEqual({
      status: "fail",
      exitCode: 125,
      checks: [{ id: "engine", status: "fail", detail: "cannot reach the container engine at unix:///x.sock: ENOENT" }],
    });
  });

  test("the engine line says Docker or Podman, rootless or not", () => {
    expect(engineSummary({ ...ENGINE, server: "Libpod/4.3.1 (linux)", version: "4.3.1", rootless: true })).toBe("Podman 4.3.1 (API 1.41) at unix:///var/run/docker.sock, rootless, runtime runc");
    expect(engineSummary({ ...ENGINE, version: undefined, userns: true })).toContain("Docker 20.10.24+dfsg1 (API 1.41)");
    expect(engineSummary({ ...ENGINE, userns: true })).toContain("rootful, user namespaces remapped");
  });
});

describe("runc from GET /version (Podman's /info does not name it)", () => {
  test("Podman's `OCI Runtime (runc)` and Docker's `runc` components", () => {
    const podman = [{ Name: "Podman Engine", Version: "4.3.1" }, { Name: "OCI Runtime (runc)", Version: "runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\nspec: 1.0.2-dev" }];
    expect(runcFromComponents(podman)).toContain("1.1.5+ds1-1+deb12u1");
    expect(runcFromComponents([{ Name: "runc", Version: "1.1.12" }])).toBe("1.1.12");
    expect(runcFromComponents([{ Name: "OCI Runtime (crun)", Version: "crun 1.8" }])).toBeUndefined();
    expect(runcFromComponents(null)).toBeUndefined();
  });
});

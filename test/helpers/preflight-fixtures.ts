/** A probe's plan and a healthy engine's /info, shared by the preflight and probe tests. */
import { buildRunPlan, type RunSettings } from "../../src/core/plan.ts";
import type { EngineInfo } from "../../src/core/preflight.ts";
import { testSettings } from "./run-settings.ts";

export const settings = (over: Partial<RunSettings> = {}): RunSettings => testSettings({ timeoutMs: 60_000, network: "none", ...over });

export const plan = (over: Partial<RunSettings> = {}) =>
  buildRunPlan(["true"], settings({ tty: false, interactive: false, ...over }), {
    workspace: "/w",
    uid: 1000,
    gid: 1000,
    env: {},
    stdinIsTTY: false,
    stdoutIsTTY: false,
    version: "0",
    now: new Date(0),
    randomId: "00000000",
  });

/** Docker 20.10 on Debian 12, as the test engine answers GET /info. */
export const DOCKER: EngineInfo = {
  SecurityOptions: ["name=seccomp,profile=default"],
  MemoryLimit: true,
  SwapLimit: true,
  PidsLimit: true,
  CpuCfsQuota: true,
  CpuCfsPeriod: true,
  KernelVersion: "6.1.0-18-amd64",
  OSType: "linux",
  DefaultRuntime: "runc",
  CgroupVersion: "2",
};


import { cpusBeyondEngine } from "./engine-refusal.ts";
import { SecurityError, UsageError } from "./errors.ts";
import type { RunPlan } from "./plan.ts";

/**
 * Fail closed: before a container may start, check that the engine will
 * apply every protection the plan asks for (run.ts checks while the
 * container is created and starts it only after; a refused one is removed).
 * An engine without seccomp, or without the memory cgroup, accepts the
 * container and only logs a warning ("Limitation discarded"); the command
 * would then run with less than `--dry-run` promised. Each check here names one protection; a run refuses
 * (exit 125) when one it needs is missing, unless the user passed
 * `--insecure-allow NAME` for it.
 *
 * `sandbox doctor` uses the same checks, then looks from inside a live
 * container (`evaluateProbe`, in probe.ts). Pure: /info comes in, verdicts
 * go out. See docs/guard.md.
 */

export const PROTECTIONS = ["seccomp", "no-new-privileges", "memory-limit", "swap-limit", "pids-limit", "cpu-limit", "runtime"] as const;
export type ProtectionName = (typeof PROTECTIONS)[number];

/** The part of GET /info the checks read (Docker and Podman's compatible API). */
export interface EngineInfo {
  SecurityOptions?: string[] | null;
  MemoryLimit?: boolean;
  SwapLimit?: boolean;
  PidsLimit?: boolean;
  CpuCfsQuota?: boolean;
  CpuCfsPeriod?: boolean;
  KernelVersion?: string;
  OSType?: string;
  DefaultRuntime?: string;
  CgroupVersion?: string;
  RuncCommit?: { ID?: string } | null;
  /** CPUs the engine's host has. */
  NCPU?: number;
}

export interface Check {
  protection: string;
  /** The plan asks for it: a failed check refuses the run. */
  required: boolean;
  ok: boolean;
  why: string;
}

/**
 * Runtimes known to apply an OCI spec's seccomp filter, no_new_privs and
 * cgroup limits (runc and its drop-ins), or to isolate more strongly than
 * that (gVisor, Kata and libkrun run the container in a sandbox kernel or a
 * VM). Anything else is unknown, so not trusted.
 */
export const KNOWN_RUNTIMES: ReadonlyMap<string, string> = new Map([
  ["runc", "runc"],
  ["io.containerd.runc.v2", "runc (containerd shim)"],
  ["io.containerd.runtime.v1.linux", "runc (containerd v1 shim)"],
  ["crun", "crun, a runc drop-in"],
  ["youki", "youki, a runc drop-in"],
  ["nvidia", "nvidia-container-runtime, a wrapper around runc"],
  ["runsc", "gVisor: a user-space kernel"],
  ["kata", "Kata Containers: a VM"],
  ["kata-runtime", "Kata Containers: a VM"],
  ["io.containerd.kata.v2", "Kata Containers: a VM"],
  ["krun", "libkrun: a VM"],
]);

/** Linux 3.5 added PR_SET_NO_NEW_PRIVS. */
const NNP_KERNEL: readonly [number, number] = [3, 5];

/** `name=seccomp,profile=default` (API ≥ 1.24) or the bare `seccomp` of older engines. */
export function securityOptionNames(options: readonly string[] | null | undefined): string[] {
  return (options ?? []).map((entry) => {
    const name = entry.split(",").find((part) => part.startsWith("name="));
    return name ? name.slice("name=".length) : entry;
  });
}

function kernelAtLeast(version: string | undefined, want: readonly [number, number]): boolean | undefined {
  const m = /^(\d+)\.(\d+)/.exec(version ?? "");
  if (!m) return undefined;
  const major = Number(m[1]);
  const minor = Number(m[2]);
  return major > want[0] || (major === want[0] && minor >= want[1]);
}

function flag(value: boolean | undefined, ok: string, missing: string): { ok: boolean; why: string } {
  if (value === true) return { ok: true, why: ok };
  if (value === false) return { ok: false, why: missing };
  return { ok: false, why: `the engine does not say (no such field in /info); ${missing}` };
}

/** What the engine says about each protection the plan may ask for. */
export function evaluatePreflight(info: EngineInfo, plan: RunPlan): Check[] {
  const host = plan.create.HostConfig;
  const checks: Check[] = [];

  const seccompWanted = plan.seccomp !== "unconfined";
  const hasSeccomp = securityOptionNames(info.SecurityOptions).includes("seccomp");
  checks.push({
    protection: "seccomp",
    required: seccompWanted,
    ok: hasSeccomp,
    why: !seccompWanted
      ? "not asked for (seccomp unconfined)"
      : hasSeccomp
        ? "the engine reports seccomp support (SecurityOptions)"
        : "the engine does not list seccomp in SecurityOptions: it would run the command without a system-call filter",
  });

  const nnpWanted = host.SecurityOpt.some((opt) => /^no-new-privileges(?::true|=true)?$/.test(opt));
  const nnpKernel = kernelAtLeast(info.KernelVersion, NNP_KERNEL);
  checks.push({
    protection: "no-new-privileges",
    required: nnpWanted,
    ok: nnpKernel !== false,
    why:
      nnpKernel === false
        ? `kernel ${info.KernelVersion} is older than ${NNP_KERNEL.join(".")}, which added no_new_privs: setuid programs could gain privileges`
        : nnpKernel === undefined
          ? "kernel version not reported; the engine applies no-new-privileges on every Linux it runs on"
          : `kernel ${info.KernelVersion} supports no_new_privs`,
  });

  const memory = flag(info.MemoryLimit, "the engine can limit memory", "the engine cannot limit memory (no memory cgroup): the limit would be dropped");
  checks.push({ protection: "memory-limit", required: host.Memory > 0, ...memory });

  const swap = flag(info.SwapLimit, "the engine can limit swap", "the engine cannot limit swap (no swap accounting): the command could swap beyond its memory limit");
  checks.push({ protection: "swap-limit", required: host.Memory > 0 && host.MemorySwap > 0, ...swap });

  const pids = flag(info.PidsLimit, "the engine can limit processes", "the engine cannot limit processes (no pids cgroup): a fork bomb would reach the host");
  checks.push({ protection: "pids-limit", required: host.PidsLimit > 0, ...pids });

  const cpuWanted = host.NanoCpus !== undefined && host.NanoCpus > 0;
  const cpu = flag(
    info.CpuCfsQuota === undefined || info.CpuCfsPeriod === undefined ? undefined : info.CpuCfsQuota && info.CpuCfsPeriod,
    "the engine can limit CPU (CFS quota)",
    "the engine cannot limit CPU (no CFS quota)",
  );
  checks.push({ protection: "cpu-limit", required: cpuWanted, ...cpu, why: cpuWanted ? cpu.why : `not asked for (no --cpus); ${cpu.why}` });

  const runtime = info.DefaultRuntime;
  const known = runtime === undefined ? undefined : KNOWN_RUNTIMES.get(runtime) ?? (/^kata/.test(runtime) ? "Kata Containers: a VM" : undefined);
  checks.push({
    protection: "runtime",
    required: true,
    ok: known !== undefined,
    why:
      runtime === undefined
        ? "the engine does not name its default runtime"
        : known !== undefined
          ? `default runtime ${runtime} (${known})`
          : `unknown default runtime "${runtime}": sandbox cannot tell whether it applies seccomp, no-new-privileges and cgroup limits`,
  });
  return checks;
}

/**
 * `--cpus` above the engine's CPUs. Docker refuses it when the container is
 * created; Podman takes it, and the quota then limits nothing. Refused on
 * both engines, in the same words, before the container starts.
 */
export function checkCpus(info: EngineInfo, plan: RunPlan): void {
  const nano = plan.create.HostConfig.NanoCpus;
  const available = info.NCPU;
  if (nano === undefined || nano <= 0 || typeof available !== "number" || available <= 0) return;
  if (nano > available * 1e9) throw new UsageError(cpusBeyondEngine(available));
}

/** Validates `--insecure-allow` values (repeatable, or comma-separated). */
export function parseInsecureAllow(values: readonly string[]): ProtectionName[] {
  const out: ProtectionName[] = [];
  for (const value of values.flatMap((v) => v.split(","))) {
    const name = value.trim().toLowerCase();
    if (!(PROTECTIONS as readonly string[]).includes(name)) {
      throw new UsageError(`sandbox run: --insecure-allow "${value}" is not a protection name`, {
        hint: `Names: ${PROTECTIONS.join(", ")}. See docs/guard.md.`,
      });
    }
    if (!out.includes(name as ProtectionName)) out.push(name as ProtectionName);
  }
  return out;
}

/**
 * Throws when a required protection cannot be applied and was not allowed
 * off; returns a warning for each one that was.
 */
export function enforcePreflight(checks: readonly Check[], allowed: readonly string[]): { warnings: string[] } {
  const failed = checks.filter((c) => c.required && !c.ok);
  const refused = failed.filter((c) => !allowed.includes(c.protection));
  if (refused.length > 0) {
    const names = refused.map((c) => c.protection);
    const lines = refused.map((c) => `${c.protection}: ${c.why}`).join("; ");
    throw new SecurityError(`refusing to run: the engine cannot apply ${names.join(", ")} (${lines})`, {
      hint: `Fix the engine (run 'sandbox doctor' for details), or accept the risk with ${names.map((n) => `--insecure-allow ${n}`).join(" ")}.`,
    });
  }
  return { warnings: failed.map((c) => `running without ${c.protection} (--insecure-allow ${c.protection}): ${c.why}`) };
}

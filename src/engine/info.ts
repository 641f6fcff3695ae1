/**
 * One GET /info per run, for checks on the engine itself (issue "Hardened by
 * default", item 8: a runc open to CVE-2024-21626 undoes the sandbox).
 * Started alongside the image check, so it costs no wall time; it never fails
 * a run.
 */
import { checkRunc, runcWarning, type RuntimeFacts, type VersionComponent } from "../core/runc-check.ts";
import type { EngineInfo } from "../core/preflight.ts";
import type { EngineClient } from "./client.ts";

/**
 * GET /info, once: the fail-closed preflight (src/core/preflight.ts) and the
 * runc warning below both read the same reply. Unlike the warning, the
 * preflight needs an answer, so this rejects when the engine gives none.
 */
export async function readEngineInfo(engine: EngineClient): Promise<EngineInfo> {
  const reply = await engine.json<EngineInfo | undefined>({ method: "GET", path: "/info", ok: [200] });
  return reply.body ?? {};
}

/** The part of GET /version sandbox reads. */
export interface EngineVersion {
  Version?: string;
  ApiVersion?: string;
  Components?: VersionComponent[] | null;
}

/** GET /version (`sandbox doctor`: the engine's version, and Podman's runc). */
export async function readEngineVersion(engine: EngineClient): Promise<EngineVersion> {
  const reply = await engine.json<EngineVersion | undefined>({ method: "GET", path: "/version", ok: [200] });
  return reply.body ?? {};
}

/** What /info says about the runtime. Podman's Docker-compatible /info leaves RuncCommit empty. */
export async function readRuntimeFacts(engine: EngineClient, info: Promise<EngineInfo> = readEngineInfo(engine)): Promise<RuntimeFacts> {
  const body = await info;
  return { runtime: body.DefaultRuntime || undefined, runcVersion: body.RuncCommit?.ID || undefined };
}

/** The longest /info may take before we stop waiting for it (the run goes on either way). */
export const INFO_WAIT_MS = 2000;

/** Reads /info and passes any warning to `warn`; resolves (never rejects) within `waitMs`. */
export async function warnAboutEngine(engine: EngineClient, warn: (line: string) => void, waitMs = INFO_WAIT_MS, info?: Promise<EngineInfo>): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const gaveUp = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), waitMs);
    (timer as { unref?: () => void }).unref?.();
  });
  try {
    const facts = await Promise.race([readRuntimeFacts(engine, info), gaveUp]);
    const line = facts ? runcWarning(checkRunc(facts)) : undefined;
    if (line) warn(line);
  } catch {
    // An engine that cannot answer /info is not a reason to stop the run.
  } finally {
    clearTimeout(timer);
  }
}

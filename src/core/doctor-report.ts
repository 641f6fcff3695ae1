import { EXIT } from "./exit-codes.ts";
import type { DoctorRow } from "./probe.ts";

/**
 * `sandbox doctor`'s verdict as a CI job reads it (`--json`): one check per
 * row, in a vocabulary a script can gate on (pass, warn, fail, skip), an
 * overall status and the exit code that goes with it. The rows themselves
 * come from probe.ts (doctorRows, escapeRows); the engine's identity and the
 * probe's fate from the command. Pure. See docs/guard.md and docs/exit-codes.md.
 */

export type CheckStatus = "pass" | "warn" | "fail" | "skip";
export type OverallStatus = "pass" | "warn" | "fail";

export interface DoctorCheck {
  id: string;
  status: CheckStatus;
  detail: string;
}

/** What the command learned about the engine (GET /_ping, /info, /version). */
export interface EngineFacts {
  address: string;
  /** /_ping's Server header: `Docker/20.10.24+dfsg1 (linux)`, `Libpod/4.3.1 (linux)`. */
  server: string | undefined;
  /** /version's Version. */
  version: string | undefined;
  apiVersion: string | undefined;
  runtime: string | undefined;
  /** /info's SecurityOptions name `rootless` (the engine runs as an ordinary user). */
  rootless: boolean;
  /** /info's SecurityOptions name `userns` (container root is remapped to an unprivileged host uid). */
  userns: boolean;
}

/**
 * The live probe: it ran (its findings are in the rows), it was skipped
 * because no image to run it in is on the engine (and none could be pulled),
 * or its container failed.
 */
export type ProbeOutcome = { state: "ran"; image: string } | { state: "skipped"; image: string; why: string } | { state: "failed"; image: string; why: string };

export interface DoctorReport {
  status: OverallStatus;
  /** 0 for pass and warn, 1 for fail (125, engine unreachable, is decided before any report). */
  exitCode: number;
  engine: EngineFacts;
  probe: ProbeOutcome;
  /** The table's rows: one per protection, then the probe's. */
  rows: DoctorRow[];
  /** The same, for scripts: the engine first, then one check per row. */
  checks: DoctorCheck[];
}

/** What a skipped probe tells the user to do. */
export const PROBE_HINT = "pass --image IMAGE to run the live probe (an image this engine has, with a shell)";

const STATUS_OF: Readonly<Record<DoctorRow["status"], CheckStatus>> = {
  active: "pass",
  inactive: "fail",
  loosened: "warn",
  "n/a": "skip",
  skipped: "skip",
};

/**
 * Rows for the protections only the probe can see (capabilities, read-only
 * root, masks, protected paths) when it did not run: "skipped", so nothing
 * claims to be checked that was not.
 */
export function skippedRows(probeOnly: readonly string[]): DoctorRow[] {
  return probeOnly.map((protection) => ({ protection, status: "skipped", why: "not checked: needs the live probe" }));
}

/** The probe's own row, last in the table. */
export function probeRow(probe: ProbeOutcome): DoctorRow {
  switch (probe.state) {
    case "ran":
      return { protection: "probe", status: "active", why: `a container planned like 'sandbox run' ran in ${probe.image}` };
    case "skipped":
      return { protection: "probe", status: "skipped", why: probe.why };
    case "failed":
      return { protection: "probe", status: "inactive", why: probe.why };
  }
}

/** "Docker 20.10.24 (API 1.41) at unix:///var/run/docker.sock, rootful" */
export function engineSummary(engine: EngineFacts): string {
  const name = /libpod|podman/i.test(engine.server ?? "") ? "Podman" : /docker/i.test(engine.server ?? "") ? "Docker" : (engine.server ?? "an engine");
  const version = engine.version ?? /\/(\S+)/.exec(engine.server ?? "")?.[1];
  const mode = engine.rootless ? "rootless" : engine.userns ? "rootful, user namespaces remapped" : "rootful";
  return `${name}${version ? ` ${version}` : ""}${engine.apiVersion ? ` (API ${engine.apiVersion})` : ""} at ${engine.address}, ${mode}, runtime ${engine.runtime ?? "unknown"}`;
}

/**
 * fail when a protection is not in force; warn when one is loosened on
 * purpose or was not checked (the probe skipped); pass otherwise. A CPU
 * limit nobody asked for ("n/a") changes nothing.
 */
export function overallStatus(rows: readonly DoctorRow[]): OverallStatus {
  if (rows.some((r) => r.status === "inactive")) return "fail";
  if (rows.some((r) => r.status === "loosened" || r.status === "skipped")) return "warn";
  return "pass";
}

export function doctorReport(engine: EngineFacts, rows: readonly DoctorRow[], probe: ProbeOutcome): DoctorReport {
  const all = [...rows, probeRow(probe)];
  const status = overallStatus(all);
  const checks: DoctorCheck[] = [
    { id: "engine", status: "pass", detail: engineSummary(engine) },
    ...all.map((r) => ({ id: r.protection, status: STATUS_OF[r.status], detail: r.protection === "probe" && r.status === "skipped" ? `${r.why}; ${PROBE_HINT}` : r.why })),
  ];
  return { status, exitCode: status === "fail" ? EXIT.GENERAL : EXIT.OK, engine, probe, rows: all, checks };
}

/** `--json` when the engine cannot be reached: the one check that could be made, failed (exit 125). */
export function unreachableReport(why: string): { status: "fail"; exitCode: number; checks: DoctorCheck[] } {
  return { status: "fail", exitCode: EXIT.SANDBOX_FAILED, checks: [{ id: "engine", status: "fail", detail: why }] };
}

import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Writable } from "node:stream";
import { doctorReport, engineSummary, PROBE_HINT, skippedRows, unreachableReport, type DoctorReport, type EngineFacts, type ProbeOutcome } from "../../core/doctor-report.ts";
import { ImageNotFoundError, SandboxError } from "../../core/errors.ts";
import { checkCpus, evaluatePreflight, securityOptionNames, type Check, type EngineInfo } from "../../core/preflight.ts";
import { doctorRows, escapeRows, evaluateProbe, parseProbeOutput, PROBE_SCRIPT, PROBE_SECRET, type DoctorRow } from "../../core/probe.ts";
import { checkRunc, runcFromComponents } from "../../core/runc-check.ts";
import type { EngineClient } from "../../engine/client.ts";
import type { Connected } from "../../engine/connect.ts";
import { connectedEgressProblem } from "../public-mode.ts";
import type { CredentialRuleStatus } from "../../core/credential-status.ts";
import { credentialStatuses } from "../credential-status.ts";
import { readEngineInfo, readEngineVersion, type EngineVersion } from "../../engine/info.ts";
import { freshLine, type Reporter } from "../../term/io.ts";
import { ensureRunImage } from "../agent-image.ts";
import { parseCommandLine, refuseArguments } from "../args.ts";
import type { CommandContext } from "../context.ts";
import { errorWords, renderError } from "../errors.ts";
import { executeRun } from "../execute-run.ts";
import { prepareRun, type PreparedRun } from "../prepare-run.ts";
import { parseRunArgs } from "../run-options.ts";
import { renderTable } from "../table.ts";

export const DOCTOR_HELP = `Usage: sandbox doctor [flags]

Checks that every protection 'sandbox run' asks for is really in force on
this engine. First the engine's own report (GET /info and /version: seccomp
support, memory/swap/process/CPU cgroup limits, runtime and its runc,
rootless or not), then a live probe: a short container planned exactly like
'sandbox run' plans one (your config included), which reads
/proc/self/status (CapEff, NoNewPrivs, Seccomp), tries to write to /, reads
its cgroup limits, and checks that a fake secret in a throw-away workspace
is masked and its .git/hooks and .git/config are read-only. Prints one row
per protection: active or not, and why; an escape your config allows on
purpose (security.allow: [ptrace]) is shown as "loosened" (not a failure).
Then the credential rules the egress proxy may add (yours, then the
built-ins): hosts, header, and where the value is on this host ("no value
on this host" when none), never the value; a command source such as
\`gh auth token\` is not run, only looked up on PATH. They do not change the
status or the exit code.

The probe image needs a POSIX sh (any image with a shell does). When it is
not on the engine and cannot be pulled (an air-gapped host), the engine's
checks are still made and the probe is skipped: its rows say "skipped".

Flags:
      --image IMAGE    Image for the probe (default: as 'sandbox run sh' would choose)
      --cpus N         Also check a CPU limit of N (only checked when set)
      --json           Print the report as JSON, for scripts and CI: "status"
                       (pass, warn or fail), "checks" (id, status: pass,
                       warn, fail or skip, detail) and "credentials" (the
                       credential rules, below)
  -H, --host ADDR      Engine address (default DOCKER_HOST or /var/run/docker.sock)
  -h, --help           Show this help

Exit codes: 0 nothing failed (status pass, or warn: a protection loosened
by your config, or the probe skipped); 1 at least one protection is not in
force, or the probe container failed; 125 the engine could not be reached
(with --json a report with a failed "engine" check is still printed).

Examples:
  sandbox doctor
  sandbox doctor --image busybox --json | jq -e '.status == "pass"'
  sandbox doctor --json | jq '.checks[] | select(.status != "pass")'
`;

const DOCTOR_OPTIONS = {
  image: { type: "string" },
  cpus: { type: "string" },
  json: { type: "boolean" },
  host: { type: "string", short: "H" },
  help: { type: "boolean", short: "h" },
} as const;

/** How long the probe may take before it counts as failed. */
const PROBE_TIMEOUT = "60s";

/** `sandbox doctor`: the engine's own checks, then a live probe when an image for it is at hand; a table, or JSON. */
export async function doctorCommand(argv: readonly string[], ctx: CommandContext): Promise<number> {
  const { values: flags, positionals } = parseCommandLine(argv, DOCTOR_OPTIONS, "doctor");
  if (flags.help) {
    ctx.stdout.write(DOCTOR_HELP);
    return 0;
  }
  refuseArguments(positionals, "doctor", "Run 'sandbox doctor --help' to see the flags.");
  const json = flags.json === true;

  const probeDir = realpathSync(mkdtempSync(join(tmpdir(), "sandbox-doctor-")));
  try {
    writeProbeWorkspace(probeDir);
    // No terminal: the probe's output is collected, its stdin is empty.
    const prepared = await prepareRun(parseRunArgs(probeArgv(flags, probeDir)), ctx, { stdinIsTTY: false, stdoutIsTTY: false });
    const { plan } = prepared;
    // Which credentials the egress proxy would add, and where each value is on this host; no command source is run (cli/credential-status.ts).
    const credentials = await credentialStatuses(prepared.settings.credentials.value, prepared.settings.credentials.source, { env: ctx.env, homeDir: ctx.homeDir, cwd: ctx.cwd });

    let connected: Connected;
    try {
      connected = await ctx.connect(flags.host);
    } catch (err) {
      if (!json || !(err instanceof SandboxError)) throw err;
      // A CI job reads the verdict from stdout whatever happened; the reason goes to stderr as usual.
      const { text, exitCode } = renderError(err, false);
      ctx.stdout.write(`${JSON.stringify({ ...unreachableReport(errorWords(err).message), ok: false, image: plan.image, credentials }, null, 2)}\n`);
      ctx.stderr.write(text);
      return exitCode;
    }
    const { engine, ping } = connected;
    const info = readEngineInfo(engine);
    const version = readEngineVersion(engine).catch(() => ({}) as EngineVersion);
    // A probe image that is not here and cannot be pulled (an air-gapped host) skips the probe, not the engine's checks.
    const probeImage = ensureRunImage(engine, prepared, ctx, json).then(
      (details) => ({ details }),
      (err: unknown) => {
        if (!(err instanceof ImageNotFoundError)) throw err;
        freshLine(ctx.stderr);
        return { missing: err.message.split("\n")[0] ?? err.message };
      },
    );
    const [body, versionBody, image] = await Promise.all([info, version, probeImage]);
    // --cpus beyond the engine's is a mistake in the question, as for `sandbox run`.
    checkCpus(body, plan);
    const engineChecks = [...evaluatePreflight(body, plan), ...runcChecks(body, versionBody)];
    const seen = new Set(engineChecks.map((c) => c.protection));
    const probeOnly = evaluateProbe({}, plan).map((c) => c.protection).filter((name) => !seen.has(name));

    let rows: DoctorRow[];
    let probe: ProbeOutcome;
    if ("missing" in image) {
      probe = { state: "skipped", image: plan.image, why: image.missing };
      rows = [...doctorRows(engineChecks, []), ...skippedRows(probeOnly)];
    } else {
      const live = await runProbe(engine, prepared, image.details.Id, ctx);
      probe = live.failure === undefined ? { state: "ran", image: plan.image } : { state: "failed", image: plan.image, why: live.failure };
      // A probe that said nothing checked nothing: its protections are skipped, not passed.
      rows = live.checks.length > 0 ? doctorRows(engineChecks, live.checks) : [...doctorRows(engineChecks, []), ...skippedRows(probeOnly)];
    }
    rows.push(...escapeRows(plan, prepared.settings.allow.source));
    rows.push(await hostIsolationRow({ engine, ping, info }, ctx.platform));

    const report = doctorReport(engineFacts(engine, ping.server, body, versionBody), rows, probe);
    ctx.stdout.write(json ? `${JSON.stringify({ ...doctorJson(report, plan.image), credentials }, null, 2)}\n` : `${renderDoctor(report)}\n${renderCredentialRules(credentials)}`);
    return report.exitCode;
  } finally {
    rmSync(probeDir, { recursive: true, force: true });
  }
}

/** A throw-away workspace with something to mask (a fake secret) and something to protect (a fake .git). */
function writeProbeWorkspace(dir: string): void {
  writeFileSync(join(dir, PROBE_SECRET.file), `${PROBE_SECRET.content}\n`);
  mkdirSync(join(dir, ".ssh"));
  writeFileSync(join(dir, PROBE_SECRET.dirFile), `${PROBE_SECRET.content}\n`);
  mkdirSync(join(dir, ".git", "hooks"), { recursive: true });
  writeFileSync(join(dir, ".git", "config"), "[core]\n\trepositoryformatversion = 0\n");
}

/** The probe as `sandbox run` arguments: planned as a run of `sh -c PROBE_SCRIPT` is, from the same config. */
function probeArgv(flags: { image?: string | undefined; cpus?: string | undefined }, dir: string): string[] {
  return [
    ...(flags.image !== undefined ? ["--image", flags.image] : []),
    ...(flags.cpus !== undefined ? ["--cpus", flags.cpus] : []),
    // The probe needs no network, and must not depend on one being there.
    "--network",
    "none",
    "--no-tty",
    "--no-interactive",
    "--timeout",
    PROBE_TIMEOUT,
    "--workspace",
    dir,
    "--",
    "sh",
    "-c",
    PROBE_SCRIPT,
  ];
}

/** runc and CVE-2024-21626, from /info (Docker) or /version (Podman, whose /info leaves it out); nothing when neither says. */
function runcChecks(info: EngineInfo, version: EngineVersion): Check[] {
  const runc = checkRunc({ runtime: info.DefaultRuntime || undefined, runcVersion: info.RuncCommit?.ID || runcFromComponents(version.Components) });
  if (runc.kind === "unknown") return [];
  const fixed = runc.kind === "fixed";
  return [{ protection: "runc-version", required: true, ok: fixed, why: fixed ? `runc ${runc.version}: CVE-2024-21626 fixed` : `runc ${runc.version} is open to CVE-2024-21626` }];
}

function engineFacts(engine: EngineClient, server: string | undefined, info: EngineInfo, version: EngineVersion): EngineFacts {
  const options = securityOptionNames(info.SecurityOptions);
  return {
    address: engine.address.url,
    server,
    version: version.Version || undefined,
    apiVersion: engine.apiVersion,
    runtime: info.DefaultRuntime,
    rootless: options.includes("rootless"),
    userns: options.includes("userns"),
  };
}

/** `--json`: the verdict first, the checks for scripts, the table's rows as before (`protections`). */
export function doctorJson(report: DoctorReport, image: string): Record<string, unknown> {
  const { engine, probe } = report;
  return {
    status: report.status,
    exitCode: report.exitCode,
    ok: report.status !== "fail",
    image,
    engine: { ...engine, server: engine.server ?? null, version: engine.version ?? null, apiVersion: engine.apiVersion ?? null, runtime: engine.runtime ?? null },
    probe: { status: probe.state, image: probe.image, ...(probe.state === "ran" ? {} : { detail: probe.why }) },
    checks: report.checks,
    protections: report.rows,
  };
}

/** The probe container: what it saw, and why it failed if it did. */
async function runProbe(engine: EngineClient, prepared: PreparedRun, imageId: string, ctx: CommandContext): Promise<{ checks: Check[]; failure: string | undefined }> {
  const out = collector();
  const err = collector();
  try {
    const quiet: Reporter = { info: () => {}, warn: () => {} };
    const stdin = new PassThrough();
    stdin.end();
    const outcome = await executeRun(engine, prepared, await prepared.guard, { stdin, stdout: out.stream, stderr: err.stream, signals: ctx.signals, reporter: quiet }, { imageId, watchdog: ctx.self && { self: ctx.self, env: ctx.env, uid: ctx.uid } });
    const checks = evaluateProbe(parseProbeOutput(out.text()), prepared.plan);
    return { checks, failure: outcome.exitCode === 0 ? undefined : `the probe exited ${outcome.exitCode}: ${oneLine(err.text())}` };
  } catch (error) {
    const message = error instanceof SandboxError ? errorWords(error).message : error instanceof Error ? error.message : String(error);
    return { checks: [], failure: `the probe container failed: ${oneLine(message)}` };
  }
}

export function renderDoctor(report: Pick<DoctorReport, "rows" | "engine" | "probe">): string {
  const { rows, probe } = report;
  const probeLine = probe.state === "skipped" ? `skipped, no image for it: ${PROBE_HINT}` : `image ${probe.image}`;
  const head = `engine: ${engineSummary(report.engine)}\nprobe: ${probeLine}\n\n`;
  const table = renderTable<DoctorRow>(
    [
      { header: "PROTECTION", value: (r) => r.protection },
      { header: "STATUS", value: (r) => r.status },
      { header: "WHY", value: (r) => r.why },
    ],
    rows,
  );
  const inactive = rows.filter((r) => r.status === "inactive").length;
  const skipped = rows.filter((r) => r.status === "skipped" && r.protection !== "probe").length;
  const loosened = rows.filter((r) => r.status === "loosened").map((r) => r.protection);
  const note = loosened.length === 0 ? "" : `loosened on purpose by your config (security.allow): ${loosened.join(", ")}\n`;
  const except = loosened.length === 0 ? "" : ", except what your config loosens on purpose";
  const tail =
    inactive > 0
      ? `\n${inactive} protection(s) not active: 'sandbox run' refuses engine-level gaps unless --insecure-allow NAME (docs/guard.md)\n`
      : probe.state === "skipped"
        ? `\nthe engine's checks pass${except}; ${skipped} protection(s) not checked without the live probe\n`
        : `\nevery protection is active${except}\n`;
  return head + table + tail + note;
}

/** The credential rules, after the protections: informational, they change neither the status nor the exit code. */
export function renderCredentialRules(statuses: readonly CredentialRuleStatus[]): string {
  const table = renderTable<CredentialRuleStatus>(
    [
      { header: "CREDENTIAL RULE", value: (s) => (s.origin === "built-in" ? s.rule : `${s.rule} (yours)`) },
      { header: "HOSTS", value: (s) => s.hosts.join(", ") },
      { header: "HEADER", value: (s) => `${s.header}: ${s.format}` },
      { header: "VALUE", value: (s) => s.detail },
    ],
    statuses,
  );
  return `${table}the egress proxy adds these in public mode and --egress runs (docs/credentials.md); values are never shown, commands not run here\n`;
}

function collector(): { stream: Writable; text(): string } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(Buffer.from(chunk));
      callback();
    },
  });
  return { stream, text: () => Buffer.concat(chunks).toString("utf8") };
}

function oneLine(text: string): string {
  const line = text.trim().split("\n").filter(Boolean).slice(-1)[0] ?? "no output";
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}

/** Egress runs and the host's own services (docs/egress.md, "The host"). */
async function hostIsolationRow(connected: Pick<Connected, "engine" | "ping" | "info">, platform: string): Promise<DoctorRow> {
  // The same judgement as a run's (Podman, rootless, remote, not Linux: egress refused).
  const problem = await connectedEgressProblem(connected, platform);
  if (problem) return { protection: "egress-host", status: "n/a", why: `egress runs are refused with this engine (${problem})` };
  const { hostFirewallStatus } = await import("../../egress/host-firewall.ts");
  const status = await hostFirewallStatus();
  if (status.ok) return { protection: "egress-host", status: "active", why: status.how };
  return {
    protection: "egress-host",
    status: "loosened",
    why: `egress runs can reach host services listening on all addresses: sandbox cannot add its firewall rules (${status.why}); add the host-wide rule in docs/egress.md ("The host")`,
  };
}

import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Writable } from "node:stream";
import { EXIT } from "../../core/exit-codes.ts";
import { evaluatePreflight, type Check } from "../../core/preflight.ts";
import { doctorRows, escapeRows, evaluateProbe, parseProbeOutput, PROBE_SCRIPT, PROBE_SECRET, type DoctorRow } from "../../core/probe.ts";
import { checkRunc } from "../../core/runc-check.ts";
import { readEngineInfo, readRuntimeFacts } from "../../engine/info.ts";
import type { Reporter } from "../../term/io.ts";
import { ensureRunImage } from "../agent-image.ts";
import { parseCommandLine, refuseArguments } from "../args.ts";
import type { CommandContext } from "../context.ts";
import { executeRun } from "../execute-run.ts";
import { prepareRun } from "../prepare-run.ts";
import { parseRunArgs } from "../run-options.ts";
import { renderTable } from "../table.ts";

export const DOCTOR_HELP = `Usage: sandbox doctor [flags]

Checks that every protection 'sandbox run' asks for is really in force on
this engine. First the engine's own report (GET /info: seccomp support,
memory/swap/process/CPU cgroup limits, runtime), then a live probe: a short
container planned exactly like 'sandbox run' plans one (your config
included), which reads /proc/self/status (CapEff, NoNewPrivs, Seccomp),
tries to write to /, reads its cgroup limits, and checks that a fake secret
in a throw-away workspace is masked and its .git/hooks and .git/config are
read-only. Prints one row per protection: active or not, and why; an
escape your config allows on purpose (security.allow: [ptrace]) is shown
as "loosened" (not a failure).

The probe image needs a POSIX sh (any image with a shell does).

Flags:
      --image IMAGE    Image for the probe (default: as 'sandbox run sh' would choose)
      --cpus N         Also check a CPU limit of N (only checked when set)
      --json           Print the rows as JSON, for scripts
  -H, --host ADDR      Engine address (default DOCKER_HOST or /var/run/docker.sock)
  -h, --help           Show this help

Exit codes: 0 every protection active; 1 at least one is not; 125 the engine
could not be reached or the probe could not be set up.

Examples:
  sandbox doctor
  sandbox doctor --image node:22 --json | jq '.protections[] | select(.status != "active")'
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

/** `sandbox doctor`: the preflight checks plus a live probe, as a table. */
export async function doctorCommand(argv: readonly string[], ctx: CommandContext): Promise<number> {
  const { values: flags, positionals } = parseCommandLine(argv, DOCTOR_OPTIONS, "doctor");
  if (flags.help) {
    ctx.stdout.write(DOCTOR_HELP);
    return 0;
  }
  refuseArguments(positionals, "doctor", "Run 'sandbox doctor --help' to see the flags.");

  // A throw-away workspace with something to mask and something to protect.
  const probeDir = realpathSync(mkdtempSync(join(tmpdir(), "sandbox-doctor-")));
  try {
    writeFileSync(join(probeDir, PROBE_SECRET.file), `${PROBE_SECRET.content}\n`);
    mkdirSync(join(probeDir, ".ssh"));
    writeFileSync(join(probeDir, PROBE_SECRET.dirFile), `${PROBE_SECRET.content}\n`);
    mkdirSync(join(probeDir, ".git", "hooks"), { recursive: true });
    writeFileSync(join(probeDir, ".git", "config"), "[core]\n\trepositoryformatversion = 0\n");

    // Planned as `sandbox run` would plan `sh -c PROBE_SCRIPT`, from the same config.
    const runArgv = [
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
      probeDir,
      "--",
      "sh",
      "-c",
      PROBE_SCRIPT,
    ];
    // No terminal: the probe's output is collected, its stdin is empty.
    const prepared = await prepareRun(parseRunArgs(runArgv), ctx, { stdinIsTTY: false, stdoutIsTTY: false });
    const { plan } = prepared;

    const { engine, ping } = await ctx.connect(flags.host);
    const info = readEngineInfo(engine);
    const [body, image] = await Promise.all([info, ensureRunImage(engine, prepared, ctx, flags.json === true)]);
    const engineChecks = evaluatePreflight(body, plan);
    const runc = checkRunc(await readRuntimeFacts(engine, info));
    const runcCheck: Check[] =
      runc.kind === "unknown"
        ? []
        : [{ protection: "runc-version", required: true, ok: runc.kind === "fixed", why: runc.kind === "fixed" ? `runc ${runc.version}: CVE-2024-21626 fixed` : `runc ${runc.version} is open to CVE-2024-21626` }];

    let probeChecks: Check[];
    const out = collector();
    const err = collector();
    try {
      const quiet: Reporter = { info: () => {}, warn: () => {} };
      const stdin = new PassThrough();
      stdin.end();
      const outcome = await executeRun(engine, prepared, await prepared.guard, { stdin, stdout: out.stream, stderr: err.stream, signals: ctx.signals, reporter: quiet }, { imageId: image.Id, watchdog: ctx.self && { self: ctx.self, env: ctx.env, uid: ctx.uid } });
      probeChecks = evaluateProbe(parseProbeOutput(out.text()), plan);
      if (outcome.exitCode !== 0) {
        probeChecks.push({ protection: "probe", required: true, ok: false, why: `the probe exited ${outcome.exitCode}: ${oneLine(err.text())}` });
      }
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      probeChecks = [{ protection: "probe", required: true, ok: false, why: `the probe container failed: ${oneLine(message)}` }];
    }

    const rows = [...doctorRows([...engineChecks, ...runcCheck], probeChecks), ...escapeRows(plan, prepared.settings.allow.source)];
    const ok = rows.every((row) => row.status !== "inactive");
    if (flags.json) {
      const view = { ok, image: plan.image, engine: { server: ping.server ?? null, apiVersion: engine.apiVersion ?? null, runtime: body.DefaultRuntime ?? null }, protections: rows };
      ctx.stdout.write(`${JSON.stringify(view, null, 2)}\n`);
    } else {
      ctx.stdout.write(renderDoctor(rows, plan.image, ping.server, body.DefaultRuntime));
    }
    return ok ? EXIT.OK : EXIT.GENERAL;
  } finally {
    rmSync(probeDir, { recursive: true, force: true });
  }
}

export function renderDoctor(rows: readonly DoctorRow[], image: string, server: string | undefined, runtime: string | undefined): string {
  const head = `engine: ${server ?? "unknown"}, runtime ${runtime ?? "unknown"}; probe image ${image}\n\n`;
  const table = renderTable<DoctorRow>(
    [
      { header: "PROTECTION", value: (r) => r.protection },
      { header: "STATUS", value: (r) => r.status },
      { header: "WHY", value: (r) => r.why },
    ],
    rows,
  );
  const inactive = rows.filter((r) => r.status === "inactive").length;
  const loosened = rows.filter((r) => r.status === "loosened").map((r) => r.protection);
  const note = loosened.length === 0 ? "" : `loosened on purpose by your config (security.allow): ${loosened.join(", ")}\n`;
  const tail =
    inactive === 0
      ? `\nevery protection is active${loosened.length === 0 ? "" : ", except what your config loosens on purpose"}\n`
      : `\n${inactive} protection(s) not active: 'sandbox run' refuses engine-level gaps unless --insecure-allow NAME (docs/guard.md)\n`;
  return head + table + tail + note;
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

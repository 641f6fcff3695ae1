import { parseDuration } from "../../core/duration.ts";
import { EngineError, UsageError } from "../../core/errors.ts";
import { EXIT } from "../../core/exit-codes.ts";
import { isManaged, MANAGED_FILTER } from "../../core/labels.ts";
import { STOP_GRACE_SECONDS } from "../../core/plan.ts";
import { buildPrunePlan, reclaimed, renderPruneReport, type ListedContainer, type PrunePlan, type PruneReport } from "../../core/prune-plan.ts";
import type { EngineClient } from "../../engine/client.ts";
import { inspectContainer, listContainers, removeContainer, stopContainer } from "../../engine/containers.ts";
import { inspectVolume, listVolumes, removeVolume } from "../../engine/volumes.ts";
import { parseCommandLine, refuseArguments } from "../args.ts";
import { confirm } from "../confirm.ts";
import type { CommandContext } from "../context.ts";
import { makeReporter } from "../../term/io.ts";

export const PRUNE_HELP = `Usage: sandbox prune [flags]

Removes the stopped containers sandbox made (kept with 'sandbox run --keep').
Only containers labelled io.sandbox.managed=true are ever touched: a
container of another tool is never removed, whatever its name or labels.

Flags:
  -a, --all                 Also stop and remove running sandbox containers
                            (asks first on a terminal; needs --force otherwise)
      --older-than DURATION Only what was created at least DURATION ago (e.g. 2h, 7d)
  -f, --force               Do not ask for confirmation
      --dry-run             Remove nothing; list what would be removed
      --volumes             Also remove sandbox's state volumes that no remaining
                            container uses
      --json                Print the result as JSON, for scripts
  -H, --host ADDR           Engine address (default DOCKER_HOST or /var/run/docker.sock)
  -h, --help                Show this help

Examples:
  sandbox prune --dry-run
  sandbox prune --older-than 7d
  sandbox prune --all --force --volumes

Exit codes: 0 done (or nothing to do); 1 something could not be removed, or
--all was refused or declined; 125 bad flag or engine unreachable.
`;

const PRUNE_OPTIONS = {
  all: { type: "boolean", short: "a" },
  "older-than": { type: "string" },
  force: { type: "boolean", short: "f" },
  "dry-run": { type: "boolean" },
  volumes: { type: "boolean" },
  json: { type: "boolean" },
  host: { type: "string", short: "H" },
  help: { type: "boolean", short: "h" },
} as const;

/** `sandbox prune`: list, choose (pure), confirm, re-check each object, remove, report. */
export async function pruneCommand(argv: readonly string[], ctx: CommandContext): Promise<number> {
  const { values: flags, positionals } = parseCommandLine(argv, PRUNE_OPTIONS, "prune");
  if (flags.help) {
    ctx.stdout.write(PRUNE_HELP);
    return 0;
  }
  refuseArguments(positionals, "prune", "prune takes flags only; run 'sandbox prune --help'.");
  let olderThanMs: number | undefined;
  if (flags["older-than"] !== undefined) {
    const parsed = parseDuration(flags["older-than"]);
    if (!parsed.ok) throw new UsageError(`sandbox prune: --older-than ${parsed.error}`, { hint: "e.g. --older-than 24h, or 7d for a week." });
    olderThanMs = parsed.value;
  }
  const all = flags.all === true;
  const dryRun = flags["dry-run"] === true;
  const askFirst = all && flags.force !== true && !dryRun;
  // Decided before touching the engine, so a script learns it at once whatever is running.
  if (askFirst && ctx.stdin.isTTY !== true) {
    throw new UsageError("sandbox prune --all stops and removes running containers, and there is no terminal to confirm it on", {
      exitCode: EXIT.GENERAL,
      hint: "Add --force to do it without asking, or --dry-run to see what it would remove.",
    });
  }

  const { engine } = await ctx.connect(flags.host);
  const now = Date.now();
  const ours = await listContainers(engine, { all: true, size: true, labels: [MANAGED_FILTER] });
  const volumeInput = flags.volumes
    ? {
        volumes: await listVolumes(engine, { labels: [MANAGED_FILTER] }),
        // Every container, foreign ones included, only to see which volumes are still mounted.
        everyContainer: (await listContainers(engine, { all: true })) as ListedContainer[],
      }
    : {};
  const plan = buildPrunePlan({ containers: ours as ListedContainer[], ...volumeInput }, { all, olderThanMs, now });

  const reporter = makeReporter(ctx.stderr, ctx.env, flags.json === true);
  if (!dryRun && askFirst && (plan.containers.length > 0 || plan.volumes.length > 0)) {
    const running = plan.containers.filter((c) => c.running).length;
    const volumes = plan.volumes.length > 0 ? ` and ${plan.volumes.length} volume(s)` : "";
    const stopping = running > 0 ? ` (${running} running: stopped first)` : "";
    const yes = await confirm(ctx.stdin, ctx.stderr, `Remove ${plan.containers.length} sandbox container(s)${stopping}${volumes}?`);
    if (!yes) {
      reporter.info("nothing removed");
      return EXIT.GENERAL;
    }
  }

  const report = dryRun ? dryRunReport(plan) : await carryOut(engine, plan, all);
  ctx.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : renderPruneReport(report));
  const runningKept = plan.kept.filter((k) => k.reason.includes("--all")).length;
  if (runningKept > 0) reporter.info(`${runningKept} running container(s) left alone; add --all to stop and remove them`);
  // Objects that vanished, are in use or turned out not to be ours were rightly left: only errors fail.
  const failed = [...report.containers, ...report.volumes].some((x) => x.outcome === "failed");
  return failed ? EXIT.GENERAL : EXIT.OK;
}

function dryRunReport(plan: PrunePlan): PruneReport {
  const containers = plan.containers.map((c) => ({ ...c, outcome: "would remove" as const }));
  return { dryRun: true, containers, volumes: plan.volumes.map((v) => ({ ...v, outcome: "would remove" as const })), kept: plan.kept, reclaimedBytes: reclaimed(containers) };
}

/** A refusal or HTTP error on one object is reported; an engine that went away ends the prune. */
function failure(err: unknown): string {
  if (err instanceof EngineError && err.statusCode !== undefined) return err.message;
  throw err;
}

async function carryOut(engine: EngineClient, plan: PrunePlan, all: boolean): Promise<PruneReport> {
  const containers: PruneReport["containers"] = [];
  for (const target of plan.containers) {
    try {
      // Re-read the object we are about to act on: the list may be stale, and
      // its label is what makes it ours, not its name or the list filter.
      const fresh = await inspectContainer(engine, target.id);
      if (fresh === undefined) {
        containers.push({ ...target, outcome: "gone", detail: "already removed" });
        continue;
      }
      if (!isManaged(fresh.Config.Labels)) {
        containers.push({ ...target, outcome: "refused", detail: "no io.sandbox.managed=true label" });
        continue;
      }
      const running = fresh.State.Running || ["running", "paused", "restarting"].includes(fresh.State.Status);
      if (running && !all) {
        containers.push({ ...target, outcome: "in use", detail: "started since it was listed; add --all" });
        continue;
      }
      if (running) await stopContainer(engine, fresh.Id, STOP_GRACE_SECONDS);
      const removed = await removeContainer(engine, fresh.Id, { force: all, volumes: true });
      containers.push({ ...target, outcome: removed ? "removed" : "gone", ...(removed ? {} : { detail: "already being removed" }) });
    } catch (err) {
      containers.push({ ...target, outcome: "failed", detail: failure(err) });
    }
  }
  const volumes: PruneReport["volumes"] = [];
  for (const target of plan.volumes) {
    try {
      const fresh = await inspectVolume(engine, target.name);
      if (fresh === undefined) volumes.push({ ...target, outcome: "gone" });
      else if (!isManaged(fresh.Labels)) volumes.push({ ...target, outcome: "refused", detail: "no io.sandbox.managed=true label" });
      else {
        const result = await removeVolume(engine, target.name);
        volumes.push({ ...target, outcome: result === "in-use" ? "in use" : result, ...(result === "in-use" ? { detail: "a container still mounts it" } : {}) });
      }
    } catch (err) {
      volumes.push({ ...target, outcome: "failed", detail: failure(err) });
    }
  }
  return { dryRun: false, containers, volumes, kept: plan.kept, reclaimedBytes: reclaimed(containers) };
}

import { createdAt, formatAge } from "../../core/age.ts";
import { isManaged, LABELS, MANAGED_FILTER } from "../../core/labels.ts";
import { parseCommandLabel } from "../../core/posture.ts";
import { listContainers, type ContainerSummary } from "../../engine/containers.ts";
import { engineFlavor } from "../../core/engine-dialect.ts";
import { displayImageName } from "../../engine/dialect.ts";
import { parseCommandLine, refuseArguments } from "../args.ts";
import type { CommandContext } from "../context.ts";
import { renderTable, type Column } from "../table.ts";

export const PS_HELP = `Usage: sandbox ps [flags]

Lists the containers sandbox made (those labelled io.sandbox.managed=true):
running ones by default. Containers of other tools are never shown.

Flags:
  -a, --all          Also list stopped containers (kept with 'sandbox run --keep')
      --json         Print a JSON array of objects, for scripts
  -H, --host ADDR    Engine address (default DOCKER_HOST or /var/run/docker.sock)
  -h, --help         Show this help

Examples:
  sandbox ps
  sandbox ps --all
  sandbox ps --all --json | jq -r '.[] | select(.state == "exited") | .name'
`;

const PS_OPTIONS = {
  all: { type: "boolean", short: "a" },
  json: { type: "boolean" },
  host: { type: "string", short: "H" },
  help: { type: "boolean", short: "h" },
} as const;

/** One row of `sandbox ps`, also the object printed by --json. */
export interface PsEntry {
  id: string;
  shortId: string;
  name: string;
  agent: string;
  image: string;
  workspace: string;
  /** The command as the user gave it (our label), else the engine's one-line rendering. */
  command: string[];
  state: string;
  status: string;
  /** ISO time from our label (or the engine's), null when unknown. */
  created: string | null;
  ageSeconds: number | null;
}

export function toPsEntry(c: ContainerSummary, now: number): PsEntry {
  const labels = c.Labels ?? {};
  const created = createdAt(labels, c.Created);
  return {
    id: c.Id,
    shortId: c.Id.slice(0, 12),
    name: (c.Names[0] ?? "").replace(/^\//, ""),
    agent: labels[LABELS.agent] ?? "",
    image: c.Image,
    workspace: labels[LABELS.workspace] ?? "",
    command: parseCommandLabel(labels[LABELS.command]) ?? [c.Command],
    state: c.State,
    status: c.Status,
    created: created === undefined ? null : new Date(created).toISOString(),
    ageSeconds: created === undefined ? null : Math.max(0, Math.floor((now - created) / 1000)),
  };
}

/** Only ours, newest first (as `docker ps`). The engine's label filter is not trusted alone. */
export function psEntries(list: readonly ContainerSummary[], now: number): PsEntry[] {
  return list
    .filter((c) => isManaged(c.Labels))
    .map((c) => toPsEntry(c, now))
    .sort((a, b) => (b.created ?? "").localeCompare(a.created ?? "") || a.name.localeCompare(b.name));
}

/** `/home/me/src/app` as `~/src/app`: the column stays readable. */
export function shortenHome(path: string, homeDir: string): string {
  if (homeDir === "" || homeDir === "/") return path;
  const home = homeDir.replace(/\/+$/, "");
  if (path === home) return "~";
  return path.startsWith(`${home}/`) ? `~${path.slice(home.length)}` : path;
}

export function renderPs(entries: readonly PsEntry[], homeDir: string): string {
  const columns: Column<PsEntry>[] = [
    { header: "ID", value: (e) => e.shortId },
    { header: "NAME", value: (e) => e.name },
    { header: "AGENT", value: (e) => e.agent || "-" },
    { header: "IMAGE", value: (e) => e.image },
    { header: "WORKSPACE", value: (e) => (e.workspace ? shortenHome(e.workspace, homeDir) : "-") },
    { header: "STATUS", value: (e) => e.status },
    { header: "AGE", value: (e) => (e.ageSeconds === null ? "-" : formatAge(e.ageSeconds * 1000)) },
  ];
  return renderTable(columns, entries);
}

/** `sandbox ps`: list our containers. */
export async function psCommand(argv: readonly string[], ctx: CommandContext): Promise<number> {
  const { values: flags, positionals } = parseCommandLine(argv, PS_OPTIONS, "ps");
  if (flags.help) {
    ctx.stdout.write(PS_HELP);
    return 0;
  }
  refuseArguments(positionals, "ps", "To see one container, use 'sandbox inspect <id|name>'.");
  const { engine } = await ctx.connect(flags.host);
  const list = await listContainers(engine, { all: flags.all === true, labels: [MANAGED_FILTER] });
  const flavor = engineFlavor(engine.server);
  const entries = psEntries(
    list.map((c) => ({ ...c, Image: displayImageName(c.Image, flavor) })),
    Date.now(),
  );
  ctx.stdout.write(flags.json ? `${JSON.stringify(entries, null, 2)}\n` : renderPs(entries, ctx.homeDir));
  return 0;
}

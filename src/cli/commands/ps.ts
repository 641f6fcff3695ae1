import { createdAt, formatAge } from "../../core/age.ts";
import { isManaged, LABELS, MANAGED_FILTER } from "../../core/labels.ts";
import { parseCommandLabel } from "../../core/posture.ts";
import { listContainers, type ContainerSummary } from "../../engine/containers.ts";
import { engineFlavor } from "../../core/engine-dialect.ts";
import { displayImageName } from "../../engine/dialect.ts";
import { parseCommandLine, refuseArguments } from "../args.ts";
import type { CommandContext } from "../context.ts";
import { renderTable, type Column } from "../table.ts";
import { defaultStateDir } from "../../core/persistence.ts";
import { formatSize } from "../../core/size.ts";
import type { StateEntry } from "../../core/state-plan.ts";
import { makeReporter } from "../../term/io.ts";
import { listAgentState } from "../agent-state.ts";

export const PS_HELP = `Usage: sandbox ps [flags]

Lists the containers sandbox made (those labelled io.sandbox.managed=true):
running ones by default. Containers of other tools are never shown.

With --state, lists the agent state sandbox keeps instead (~/.claude,
~/.codex, ... per agent and per workspace, under
\$XDG_STATE_HOME/sandbox/agents, by default ~/.local/state/sandbox/agents):
which workspace each belongs to ("(gone)" when it no longer exists), its
size and when it was last used. 'sandbox prune --volumes' removes the gone
ones. No engine is needed.

Flags:
  -a, --all          Also list stopped containers (kept with 'sandbox run --keep')
      --state        List agent state folders instead of containers
      --json         Print a JSON array of objects, for scripts
  -H, --host ADDR    Engine address (default DOCKER_HOST or /var/run/docker.sock)
  -h, --help         Show this help

Examples:
  sandbox ps
  sandbox ps --all
  sandbox ps --all --json | jq -r '.[] | select(.state == "exited") | .name'
  sandbox ps --state
  sandbox ps --state --json | jq -r '.[] | select(.workspaceExists == false) | .path'
`;

const PS_OPTIONS = {
  all: { type: "boolean", short: "a" },
  state: { type: "boolean" },
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
  if (flags.state) return psState(ctx, flags.json === true);
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

/** One row of `sandbox ps --state`, also the object printed by --json. */
export interface StateRow {
  agent: string;
  key: string;
  /** The workspace recorded beside the folder; null when the marker is missing or unreadable. */
  workspace: string | null;
  /** False once the workspace is gone (prune --volumes removes it then); null when unknown. */
  workspaceExists: boolean | null;
  path: string;
  /** `directory`, or `symlink`/`other`: not something sandbox made (never followed, never removed). */
  kind: "directory" | "symlink" | "other";
  sizeBytes: number | null;
  /** The later of the folder's and its marker's mtime (the marker is rewritten by every run), ISO time. */
  lastUsed: string | null;
  lastUsedAgeSeconds: number | null;
}

/** Folders only (a marker left without its folder is prune's business), by agent, then workspace. */
export function stateRows(entries: readonly StateEntry[], now: number): StateRow[] {
  const rows: StateRow[] = [];
  for (const e of entries) {
    if (e.kind === "missing") continue;
    rows.push({
      agent: e.agent,
      key: e.key,
      workspace: e.workspace,
      workspaceExists: e.workspaceExists,
      path: e.path,
      kind: e.kind,
      sizeBytes: e.sizeBytes,
      lastUsed: e.lastUsedMs === null ? null : new Date(e.lastUsedMs).toISOString(),
      lastUsedAgeSeconds: e.lastUsedMs === null ? null : Math.max(0, Math.floor((now - e.lastUsedMs) / 1000)),
    });
  }
  return rows.sort((a, b) => a.agent.localeCompare(b.agent) || (a.workspace ?? "\uffff").localeCompare(b.workspace ?? "\uffff") || a.key.localeCompare(b.key));
}

export function renderStateRows(rows: readonly StateRow[], homeDir: string): string {
  const columns: Column<StateRow>[] = [
    { header: "AGENT", value: (r) => r.agent },
    {
      header: "WORKSPACE",
      value: (r) => (r.workspace === null ? "(unknown)" : `${shortenHome(r.workspace, homeDir)}${r.workspaceExists === false ? " (gone)" : ""}`),
    },
    { header: "SIZE", value: (r) => (r.sizeBytes === null ? "-" : formatSize(r.sizeBytes)) },
    { header: "LAST USED", value: (r) => (r.lastUsedAgeSeconds === null ? "-" : `${formatAge(r.lastUsedAgeSeconds * 1000)} ago`) },
    { header: "PATH", value: (r) => `${shortenHome(r.path, homeDir)}${r.kind === "symlink" ? " (symlink: not followed)" : r.kind === "other" ? " (not a directory)" : ""}` },
  ];
  return renderTable(columns, rows);
}

/** `sandbox ps --state`: the agent state folders on this machine; no engine involved. */
function psState(ctx: CommandContext, json: boolean): number {
  const listing = listAgentState(defaultStateDir(ctx.env, ctx.homeDir), { sizes: true });
  const reporter = makeReporter(ctx.stderr, ctx.env, false);
  for (const note of listing.notes) reporter.warn(note);
  const rows = stateRows(listing.entries, Date.now());
  ctx.stdout.write(json ? `${JSON.stringify(rows, null, 2)}\n` : renderStateRows(rows, ctx.homeDir));
  return 0;
}

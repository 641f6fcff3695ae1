import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { basename, dirname, resolve } from "node:path";
import { UsageError } from "../../core/errors.ts";
import { globalConfigPath, loadConfigFiles, effectiveSettings, type LoadedConfig } from "../../config/load.ts";
import { WORKSPACE_FILE_NAME } from "../../config/schema.ts";
import { CONFIG_TEMPLATE } from "../../config/template.ts";
import { settingRows, type SettingRow } from "../../config/report.ts";
import { ruleStatusLine, type CredentialRuleStatus } from "../../core/credential-status.ts";
import { credentialStatuses } from "../credential-status.ts";
import { SETTINGS } from "../../config/settings.ts";
import { parseFlags } from "../args.ts";
import type { CommandContext } from "../context.ts";
import { readConfig } from "../prepare-run.ts";

export const CONFIG_HELP = `Usage: sandbox config <show|path|init|validate> [flags]

  show [--json]          Effective settings and where each came from (default, a file, or a flag),
                         then every credential rule: hosts, header, where its value is on
                         this host (never the value; a command source is not run)
  path                   The config files sandbox reads, and whether they exist
  init [--force]         Write a commented default config (never overwrites without --force)
  validate [FILE]        Check FILE (a config.yaml or .sandbox.yml), or the files in effect

Examples:
  sandbox config show
  sandbox config validate ~/.config/sandbox/config.yaml
`;

export async function configCommand(argv: readonly string[], ctx: CommandContext): Promise<number> {
  const [sub, ...rest] = argv;
  const flags = parseFlags([...rest], { json: { type: "boolean" }, force: { type: "boolean" }, help: { type: "boolean", short: "h" } }, "config");
  if (sub === undefined || sub === "--help" || sub === "-h" || flags.help) {
    ctx.stdout.write(CONFIG_HELP);
    return sub === undefined ? 125 : 0;
  }
  switch (sub) {
    case "show":
      return await show(ctx, flags.json === true);
    case "path":
      return paths(ctx);
    case "init":
      return init(ctx, flags.force === true);
    case "validate":
      return await validate(ctx, rest.find((a) => !a.startsWith("-")));
    default:
      throw new UsageError(`sandbox config: unknown subcommand "${sub}"`, { hint: "Use show, path, init or validate." });
  }
}

async function show(ctx: CommandContext, json: boolean): Promise<number> {
  const loaded = await readConfig(ctx, ctx.cwd);
  const settings = effectiveSettings(loaded);
  const rows: Array<SettingRow & { credential?: CredentialRuleStatus }> = settingRows(SETTINGS, settings, { uid: ctx.uid, gid: ctx.gid, env: ctx.env, homeDir: ctx.homeDir });
  // Whether runs obey the workspace's file (sandbox trust): an untrusted one is marked and its settings left out.
  if (loaded.workspaceTrust) rows.push({ key: WORKSPACE_FILE_NAME, value: trustShown(loaded), source: loaded.workspaceTrust.path });
  // Every credential rule a run may use (yours, then the built-ins), and where its value is on this host; never the value (cli/credential-status.ts).
  const statuses = await credentialStatuses(settings.credentials.value, settings.credentials.source, { env: ctx.env, homeDir: ctx.homeDir, cwd: ctx.cwd });
  for (const status of statuses) rows.push({ key: `credential rule ${status.rule}`, value: ruleStatusLine(status), source: status.origin, credential: status });
  if (json) {
    ctx.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return 0;
  }
  const width = Math.max(...rows.map((r) => r.key.length));
  for (const r of rows) ctx.stdout.write(`${r.key.padEnd(width)}  ${r.value}  (${r.source})\n`);
  return 0;
}

function trustShown(loaded: LoadedConfig): string {
  const ignored = loaded.ignoredWorkspace;
  if (!ignored) return "trusted";
  const why = ignored.state === "changed" ? "changed since you trusted it" : "not trusted";
  return `${why}: ignored (it would set ${ignored.wouldSet}); run 'sandbox trust' to obey it`;
}

function paths(ctx: CommandContext): number {
  const global = globalConfigPath(ctx.env, ctx.homeDir);
  const legacy = resolve(ctx.homeDir, ".sandbox/config.yaml");
  const workspace = resolve(ctx.cwd, WORKSPACE_FILE_NAME);
  const line = (label: string, path: string) => ctx.stdout.write(`${label.padEnd(10)} ${path}${existsSync(path) ? "" : " (absent)"}\n`);
  line("global", global.path);
  if (!global.explicit) line("legacy", legacy);
  line("workspace", workspace);
  return 0;
}

function init(ctx: CommandContext, force: boolean): number {
  const { path } = globalConfigPath(ctx.env, ctx.homeDir);
  if (existsSync(path) && !force) {
    throw new UsageError(`${path} already exists`, { exitCode: 1, hint: "Edit it, or pass --force to replace it with the commented default." });
  }
  mkdirSync(dirname(path), { recursive: true });
  // Write then rename: an interrupted init never leaves half a file.
  const tmp = `${path}.tmp-${randomBytes(4).toString("hex")}`;
  try {
    writeFileSync(tmp, CONFIG_TEMPLATE, { mode: 0o600 });
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  ctx.stdout.write(`wrote ${path}\n`);
  return 0;
}

async function validate(ctx: CommandContext, file: string | undefined): Promise<number> {
  if (file === undefined) {
    // The workspace's file is checked whether or not it is trusted; runs obey it only once it is.
    const untrusted = (await readConfig(ctx, ctx.cwd)).ignoredWorkspace;
    const loaded = await readConfig(ctx, ctx.cwd, { trustWorkspaceConfig: true });
    effectiveSettings(loaded);
    const files = [loaded.globalPath, loaded.legacyPath, loaded.workspacePath].filter(Boolean);
    ctx.stdout.write(files.length ? `valid: ${files.join(", ")}\n` : "valid: no config files, built-in defaults apply\n");
    if (untrusted) ctx.stdout.write(`note: ${untrusted.path} is not trusted, so runs ignore it; 'sandbox trust' obeys it\n`);
    return 0;
  }
  const path = resolve(ctx.cwd, file);
  if (!existsSync(path)) throw new UsageError(`${path} does not exist`, { hint: "Pass the path of a config.yaml or .sandbox.yml." });
  const isWorkspace = basename(path) === WORKSPACE_FILE_NAME;
  const loaded = isWorkspace
    ? await readConfig({ ...ctx, env: { ...ctx.env, SANDBOX_CONFIG: undefined, XDG_CONFIG_HOME: "/nonexistent" }, homeDir: "/nonexistent" }, dirname(path), { trustWorkspaceConfig: true })
    : await loadConfigFiles({ env: { SANDBOX_CONFIG: path }, homeDir: "/nonexistent", workspace: "/nonexistent", readFile: (p) => (p === path ? readFileSync(p, "utf8") : undefined) });
  effectiveSettings(loaded);
  ctx.stdout.write(`valid: ${path}\n`);
  return 0;
}


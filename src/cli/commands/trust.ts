import { createHash } from "node:crypto";
import { join, resolve } from "node:path";
import { effectiveSettings } from "../../config/load.ts";
import { settingNotes } from "../../config/resolve.ts";
import { WORKSPACE_FILE_NAME } from "../../config/schema.ts";
import { workspaceFileLines } from "../../config/trust.ts";
import { UsageError } from "../../core/errors.ts";
import { printable } from "../../core/printable.ts";
import { trustRecord, withoutTrust, withTrust } from "../../core/trust.ts";
import { readWorkspaceFile } from "../../workspace/read-file.ts";
import { parseCommandLine } from "../args.ts";
import type { CommandContext } from "../context.ts";
import { readConfig, resolveWorkspace } from "../prepare-run.ts";
import { readTrustStore, trustStorePath, writeTrustStore } from "../trust-store.ts";

export const TRUST_HELP = `Usage: sandbox trust [DIR]              trust DIR's .sandbox.yml as it is now
       sandbox trust --list             list the workspaces whose file you trusted
       sandbox trust --revoke [DIR]     forget DIR's trust

A repository's .sandbox.yml (image, setup steps, env, network, timeout) is
obeyed only after you trusted that exact content: 'sandbox trust' shows
what the file would do and records its sha256 for the workspace (DIR,
default the current directory) in your state folder
(\${XDG_STATE_HOME:-~/.local/state}/sandbox/trust.json). When the file
changes, runs ignore it again (with one line saying so) until you trust
the new content. 'sandbox run --trust-workspace-config' obeys it for one
run without recording anything. docs/config.md.

Examples:
  sandbox trust
  sandbox trust ~/src/project
  sandbox trust --list
  sandbox trust --revoke
`;

export async function trustCommand(argv: readonly string[], ctx: CommandContext): Promise<number> {
  const { values, positionals } = parseCommandLine(argv, { list: { type: "boolean" }, revoke: { type: "boolean" }, help: { type: "boolean", short: "h" } }, "trust");
  if (values.help) {
    ctx.stdout.write(TRUST_HELP);
    return 0;
  }
  if (positionals.length > 1) throw new UsageError(`sandbox trust: unexpected argument "${positionals[1]}"`, { hint: "Give at most one folder." });
  if (values.list && (values.revoke || positionals.length > 0)) throw new UsageError("sandbox trust: --list takes no folder and no --revoke", { hint: "Run 'sandbox trust --list' alone." });
  const storePath = trustStorePath(ctx.env, ctx.homeDir);
  if (values.list) return list(ctx, storePath);
  const dir = positionals[0] ?? ctx.cwd;
  // A folder that is gone can still be revoked, by the path it was trusted under.
  if (values.revoke) return revoke(ctx, storePath, existing(dir, ctx.cwd) ?? resolve(ctx.cwd, dir));
  return trust(ctx, storePath, resolveWorkspace(dir, ctx.cwd));
}

function existing(dir: string, cwd: string): string | undefined {
  try {
    return resolveWorkspace(dir, cwd);
  } catch {
    return undefined;
  }
}

function sha256Of(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

async function trust(ctx: CommandContext, storePath: string, workspace: string): Promise<number> {
  const path = join(workspace, WORKSPACE_FILE_NAME);
  // A regular file only, never through a link (workspace/read-file.ts), like a run reads it.
  const text = readWorkspaceFile(path);
  if (text === undefined) {
    throw new UsageError(`there is no ${WORKSPACE_FILE_NAME} in ${printable(workspace)}`, { exitCode: 1, hint: "Run 'sandbox trust' in the folder that holds the file, or name it: sandbox trust DIR." });
  }
  // Validated as a run would obey it: a file that could not be obeyed is not recorded.
  const loaded = await readConfig(ctx, workspace, { trustWorkspaceConfig: true });
  const sha256 = sha256Of(text);
  if (loaded.workspaceTrust?.sha256 !== sha256 || loaded.workspaceFile === undefined) {
    throw new UsageError(`${printable(path)} changed while it was being read`, { hint: "Run 'sandbox trust' again." });
  }
  const store = readTrustStore(storePath);
  const before = trustRecord(store, workspace);
  ctx.stdout.write(`${printable(path)} would set:\n`);
  for (const line of workspaceFileLines(loaded.workspaceFile)) ctx.stdout.write(`${line}\n`);
  // What your own config and sandbox's rules make of it (a named network, a longer timeout, an image you pinned).
  for (const note of settingNotes(effectiveSettings(loaded))) ctx.stdout.write(`  note: ${note}\n`);
  ctx.stdout.write("A repository cannot loosen the sandbox nor forward host variables; setup steps never see the variables you forward nor the agent's state (docs/config.md).\n");
  if (before?.sha256 === sha256) {
    ctx.stdout.write(`already trusted: ${printable(path)} (sha256 ${sha256})\n`);
    return 0;
  }
  writeTrustStore(storePath, withTrust(store, workspace, sha256, new Date()));
  ctx.stdout.write(`${before ? "trusted the new content of" : "trusted"} ${printable(path)} (sha256 ${sha256}); runs in ${printable(workspace)} obey it until it changes\n`);
  return 0;
}

function list(ctx: CommandContext, storePath: string): number {
  const store = readTrustStore(storePath);
  if (store.records.length === 0) {
    ctx.stdout.write(`no trusted workspace files (${storePath})\n`);
    return 0;
  }
  for (const record of [...store.records].sort((a, b) => a.workspace.localeCompare(b.workspace))) {
    let now: string;
    try {
      const text = readWorkspaceFile(join(record.workspace, WORKSPACE_FILE_NAME));
      now = text === undefined ? "file gone" : sha256Of(text) === record.sha256 ? "in effect" : "changed since: ignored";
    } catch (err) {
      now = `unreadable: ${(err as Error).message.split(":")[0]}`;
    }
    ctx.stdout.write(`${printable(record.workspace)}  sha256 ${record.sha256.slice(0, 16)}…  trusted ${record.trusted || "?"}  (${now})\n`);
  }
  return 0;
}

function revoke(ctx: CommandContext, storePath: string, workspace: string): number {
  const { store, removed } = withoutTrust(readTrustStore(storePath), workspace);
  if (!removed) {
    ctx.stdout.write(`${printable(workspace)} was not trusted\n`);
    return 0;
  }
  writeTrustStore(storePath, store);
  ctx.stdout.write(`revoked: runs in ${printable(workspace)} ignore its ${WORKSPACE_FILE_NAME} again\n`);
  return 0;
}

import { printable } from "../core/printable.ts";
import type { TrustState } from "../core/trust.ts";
import type { WorkspaceFile } from "./schema.ts";
import { isPlainObject } from "./values.ts";

/**
 * What a repository's `.sandbox.yml` would do, in words: for the one line a
 * run prints when it ignores an untrusted file, and for what `sandbox
 * trust` shows before recording its consent. The file's values come from
 * whoever wrote the repository, so each is escaped (core/printable.ts) and
 * cut short where it is put in a line.
 */

/** `.sandbox.yml` present but not obeyed (core/trust.ts says why). */
export interface IgnoredWorkspaceFile {
  readonly path: string;
  readonly sha256: string;
  readonly state: Exclude<TrustState, "trusted" | "flag">;
  /** What it would set, in words (summarizeWorkspaceFile). */
  readonly wouldSet: string;
  /** Set when the file would not even pass validation, with the first problem. */
  readonly invalid?: string;
}

const MAX_VALUE = 60;

function value(input: unknown): string {
  const text = typeof input === "string" ? input : JSON.stringify(input) ?? String(input);
  return printable(text.length > MAX_VALUE ? `${text.slice(0, MAX_VALUE)}…` : text);
}

function count(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** One phrase per key: `image python:3.12`, `2 setup steps`, `env A, B`, `network none`, `timeout 10m`; other keys by name. */
export function summarizeWorkspaceFile(data: unknown): string {
  if (data === null || data === undefined) return "nothing";
  if (!isPlainObject(data)) return "nothing usable (it is not a mapping)";
  const parts: string[] = [];
  for (const [key, v] of Object.entries(data)) {
    if (v === null || v === undefined) continue;
    switch (key) {
      case "setup":
        parts.push(Array.isArray(v) ? count(v.length, "setup step", "setup steps") : "setup");
        break;
      case "env":
        parts.push(isPlainObject(v) ? `env ${Object.keys(v).map(value).join(", ")}` : "env");
        break;
      case "image":
      case "network":
      case "timeout":
        parts.push(`${key} ${value(v)}`);
        break;
      default:
        parts.push(value(key));
    }
  }
  return parts.length ? parts.join(", ") : "nothing";
}

/**
 * The one line a run prints for an ignored file: what it would set, and how
 * to obey it (`sandbox trust` in that folder, or the flag for one run).
 */
export function ignoredWorkspaceNote(ignored: IgnoredWorkspaceFile, workspace: string): string {
  const why = ignored.state === "changed" ? "it changed since you trusted it" : "you have not trusted it";
  const invalid = ignored.invalid ? `; it is not valid as it stands (${ignored.invalid})` : "";
  const how = ignored.state === "changed" ? "to trust this version" : "to obey it";
  return `ignored ${printable(ignored.path)}: ${why} (it would set ${ignored.wouldSet}${invalid}); review it, then run 'sandbox trust' in ${printable(workspace)} ${how}, or pass --trust-workspace-config for one run`;
}

/** What `sandbox trust` shows before recording consent: every key the file sets, steps in full. */
export function workspaceFileLines(file: WorkspaceFile): string[] {
  const lines: string[] = [];
  if (file.image !== undefined) lines.push(`  image: ${printable(String(file.image))}  (used unless you pin one for the agent or command, or pass --image)`);
  const setup = (file.setup ?? []) as readonly string[];
  if (setup.length > 0) {
    lines.push(`  setup: ${count(setup.length, "step", "steps")}, run in /work before every command in this workspace:`);
    setup.forEach((step, i) => lines.push(`    ${i + 1}. ${printable(step)}`));
  }
  const env = (file.env ?? {}) as Readonly<Record<string, unknown>>;
  for (const [name, v] of Object.entries(env)) lines.push(`  env: ${printable(name)}=${printable(String(v))}`);
  if (file.network !== undefined) lines.push(`  network: ${printable(String(file.network))}  (only none, bridge or public count)`);
  if (file.timeout !== undefined) lines.push(`  timeout: ${printable(String(file.timeout))}  (can only shorten yours)`);
  if (lines.length === 0) lines.push("  nothing (the file sets no keys)");
  return lines;
}

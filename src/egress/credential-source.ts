import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { CredentialError, describeSource, isShadowed, PLACEHOLDER, valueProblem, type CredentialRule, type CredentialSource } from "../core/credentials.ts";
import { expandHome } from "../core/persistence.ts";
import { Secret } from "../core/secret.ts";

/**
 * Reads credential values on the host, for the rules a run uses: from
 * sandbox's own environment, a file, or a command such as `gh auth token`.
 *
 * Nothing here prints, logs or returns a value other than inside a Secret:
 * a command's output is captured (never inherited), its error output is
 * dropped unread (a failing helper may echo what it was working on), and
 * messages name the source, never what it gave.
 */

export interface SourceContext {
  /** sandbox's own environment (not the container's). */
  env: Readonly<Record<string, string | undefined>>;
  homeDir: string;
  /** Relative file paths and commands start here. */
  cwd: string;
  /** How long a command may take; default 10 s. */
  commandTimeoutMs?: number;
}

/** A rule in use, with its value and where that came from (for messages: `$GH_TOKEN`, `` `gh auth token` ``). */
export interface ActiveCredential {
  rule: CredentialRule;
  value: Secret;
  from: string;
}

export type SourceResult = { value: Secret; from: string } | { missing: string };

const MAX_VALUE_BYTES = 64 * 1024;

/**
 * One source. No value (a variable unset, a file or program that does not
 * exist, a command that fails) is `missing`, with why, so the next source can
 * be tried; a value that exists but cannot be used (a line break in it, an
 * unreadable file) is a CredentialError: better to stop than to run with a
 * credential silently missing.
 */
export async function readSource(source: CredentialSource, ctx: SourceContext): Promise<SourceResult> {
  const from = describeSource(source);
  let raw: string;
  if ("env" in source) {
    const value = ctx.env[source.env];
    if (value === undefined || value === "") return { missing: `${from} is not set` };
    raw = value;
  } else if ("file" in source) {
    const path = resolve(ctx.cwd, expandHome(source.file, ctx.homeDir));
    try {
      raw = await readFile(path, "utf8");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return { missing: `${from} does not exist` };
      throw new CredentialError(`cannot read the credential ${from}: ${code ?? (err as Error).message}`, "Make the file readable by you, or remove it from the credential rule.");
    }
    if (raw.length > MAX_VALUE_BYTES) throw new CredentialError(`the credential ${from} is larger than 64 KiB`, "The file should hold the token alone.");
  } else {
    const ran = await runCommand(source.command, ctx);
    if ("missing" in ran) return { missing: `${from} ${ran.missing}` };
    raw = ran.stdout;
  }
  const value = raw.trim();
  if (value === "") return { missing: `${from} is empty` };
  // A value that is the placeholder came from a sandbox itself (a run inside a run): there is nothing to add.
  if (value === PLACEHOLDER) return { missing: `${from} holds the placeholder ${PLACEHOLDER}, not a credential` };
  const problem = valueProblem(value);
  if (problem) throw new CredentialError(`the credential from ${from} cannot be sent in a header: ${problem}`, "Check what the source gives: a token is one line of printable characters.");
  return { value: new Secret(value), from };
}

function runCommand(argv: readonly string[], ctx: SourceContext): Promise<{ stdout: string } | { missing: string }> {
  const [file, ...args] = argv;
  if (!file) return Promise.resolve({ missing: "is empty" });
  return new Promise((done) => {
    execFile(
      file,
      args,
      { cwd: ctx.cwd, env: { ...ctx.env }, timeout: ctx.commandTimeoutMs ?? 10_000, maxBuffer: MAX_VALUE_BYTES, encoding: "utf8", windowsHide: true },
      (err, stdout) => {
        if (!err) {
          done({ stdout });
          return;
        }
        const e = err as NodeJS.ErrnoException & { killed?: boolean; signal?: string | null; code?: string | number | null };
        // Only the way it failed, never its output: that may hold part of a value.
        if (e.code === "ENOENT") done({ missing: "was not found" });
        else if (e.killed || e.signal) done({ missing: `was stopped (${e.signal ?? "timeout"})` });
        else if (e.code === "ERR_CHILD_PROCESS_STDIO_MAXBUFFER") done({ missing: "printed more than 64 KiB" });
        else if (typeof e.code === "number") done({ missing: `exited with status ${e.code}` });
        else done({ missing: `failed (${e.code ?? "error"})` });
      },
    ).stdin?.end();
  });
}

/** A rule's value: its sources in order, the first that yields one; else every reason there was none. */
export async function resolveRule(rule: CredentialRule, ctx: SourceContext, cache = new Map<string, Promise<SourceResult>>()): Promise<{ value: Secret; from: string } | { missing: string[] }> {
  const reasons: string[] = [];
  for (const source of rule.sources) {
    // Rules sharing a source (GitHub's API and git rules) run its command once.
    const key = JSON.stringify(source);
    let pending = cache.get(key);
    if (!pending) {
      pending = readSource(source, ctx);
      cache.set(key, pending);
    }
    const result = await pending;
    if ("value" in result) return result;
    reasons.push(result.missing);
  }
  return { missing: reasons };
}

export interface ResolvedCredentials {
  /** In rule order: the run adds these. */
  used: ActiveCredential[];
  /** Rules whose hosts an earlier rule in use claims; their sources were not read. */
  shadowed: CredentialRule[];
  /** Rules without a value, with the reason for each source. */
  missing: Array<{ rule: CredentialRule; reasons: string[] }>;
}

/** The rules' values, in order, skipping (without reading) rules an earlier one shadows (core/credentials.ts, isShadowed). */
export async function resolveCredentials(rules: readonly CredentialRule[], ctx: SourceContext): Promise<ResolvedCredentials> {
  const out: ResolvedCredentials = { used: [], shadowed: [], missing: [] };
  const cache = new Map<string, Promise<SourceResult>>();
  for (const rule of rules) {
    if (isShadowed(out.used.map((c) => c.rule), rule)) {
      out.shadowed.push(rule);
      continue;
    }
    const result = await resolveRule(rule, ctx, cache);
    if ("value" in result) out.used.push({ rule, value: result.value, from: result.from });
    else out.missing.push({ rule, reasons: result.missing });
  }
  return out;
}

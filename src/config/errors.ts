import * as v from "valibot";
import { ConfigError } from "../core/errors.ts";

/**
 * Turns what the YAML parser and the schema report into one ConfigError per
 * file, so the user sees every problem in a file at once, each on a line of
 * its own naming the key path and what was expected.
 */

/** More than this many problems is noise; the rest are counted, not listed. */
const MAX_LINES = 20;
const MAX_TEXT = 60;

/** A short, quoted description of a value for "got ..." in messages. */
export function describeValue(input: unknown): string {
  if (input === undefined) return "nothing";
  if (input === null) return "an empty value";
  if (typeof input === "string") {
    const text = input.length > MAX_TEXT ? `${input.slice(0, MAX_TEXT)}…` : input;
    return JSON.stringify(text);
  }
  if (typeof input === "number" || typeof input === "boolean" || typeof input === "bigint") return String(input);
  if (Array.isArray(input)) return "a list";
  if (input instanceof Uint8Array) return "binary data";
  if (input instanceof Date) return "a date";
  if (typeof input === "object") return "a mapping";
  return `a ${typeof input}`;
}

/** A valibot message function: `expected <what>, got <value>`. */
export function expected(what: string): (issue: v.BaseIssue<unknown>) => string {
  return (issue) => `expected ${what}, got ${describeValue(issue.input)}`;
}

/** One line per issue, `key.path: message`, duplicates dropped, capped. */
export function formatIssues(issues: readonly v.BaseIssue<unknown>[]): string[] {
  const lines = [...new Set(issues.map((issue) => `${v.getDotPath(issue) ?? "(top level)"}: ${issue.message}`))];
  if (lines.length <= MAX_LINES) return lines;
  return [...lines.slice(0, MAX_LINES), `… and ${lines.length - MAX_LINES} more`];
}

/** The ConfigError for a file: its path on the first line, one problem per line after. */
export function fileError(file: string, problems: readonly string[], hint?: string): ConfigError {
  const body = problems.map((line) => `  ${line}`).join("\n");
  return new ConfigError(`invalid configuration in ${file}:\n${body}`, hint === undefined ? {} : { hint });
}

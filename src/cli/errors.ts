import { SandboxError } from "../core/errors.ts";
import { EXIT } from "../core/exit-codes.ts";
import { printableLines } from "../core/printable.ts";

/**
 * The one place where failures become text and exit codes: a typed error
 * prints its message and hint as one paragraph; anything else is a bug in
 * sandbox and still exits 125 (never a stack trace unless SANDBOX_DEBUG).
 * Messages may name workspace files or engine answers: their control
 * characters are escaped (core/printable.ts).
 */
export function renderError(err: unknown, debug: boolean): { text: string; exitCode: number } {
  if (err instanceof SandboxError) {
    // Messages may already name the subcommand ("sandbox run: ..."); never say "sandbox:" twice.
    const lead = err.message.startsWith("sandbox") ? "" : "sandbox: ";
    const text = printableLines(`${lead}${err.message}${err.hint ? `\n  ${err.hint}` : ""}\n`);
    return { text: debug && err.cause ? `${text}${String((err.cause as Error).stack ?? err.cause)}\n` : text, exitCode: err.exitCode };
  }
  const e = err as Error;
  const detail = printableLines(debug ? `${e?.stack ?? String(err)}` : `${e?.message ?? String(err)}`);
  return {
    text: `sandbox: internal error: ${detail}\n  This is a bug in sandbox; please report it with the command you ran (SANDBOX_DEBUG=1 shows the stack).\n`,
    exitCode: EXIT.SANDBOX_FAILED,
  };
}

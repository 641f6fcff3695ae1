import { describeRefusal } from "../core/engine-refusal.ts";
import { EngineError, SandboxError } from "../core/errors.ts";
import { EXIT } from "../core/exit-codes.ts";
import { printableLines } from "../core/printable.ts";

/**
 * The one place where failures become text and exit codes: a typed error
 * prints its message and hint as one paragraph; anything else is a bug in
 * sandbox and still exits 125 (never a stack trace unless SANDBOX_DEBUG).
 * Messages may name workspace files or engine answers: their control
 * characters are escaped (core/printable.ts). An engine's refusal is put in
 * sandbox's words, its own kept on the next line (core/engine-refusal.ts).
 */
export function renderError(err: unknown, debug: boolean): { text: string; exitCode: number } {
  if (err instanceof SandboxError) {
    const { message, hint } = errorWords(err);
    // Messages may already name the subcommand ("sandbox run: ..."); never say "sandbox:" twice.
    const lead = message.startsWith("sandbox") ? "" : "sandbox: ";
    const text = printableLines(`${lead}${message}${hint ? `\n  ${hint}` : ""}\n`);
    return { text: debug && err.cause ? `${text}${String((err.cause as Error).stack ?? err.cause)}\n` : text, exitCode: err.exitCode };
  }
  const e = err as Error;
  const detail = printableLines(debug ? `${e?.stack ?? String(err)}` : `${e?.message ?? String(err)}`);
  return {
    text: `sandbox: internal error: ${detail}\n  This is a bug in sandbox; please report it with the command you ran (SANDBOX_DEBUG=1 shows the stack).\n`,
    exitCode: EXIT.SANDBOX_FAILED,
  };
}

/** What a typed error says: its message and hint, or for an engine's refusal sandbox's words and the engine's. */
export function errorWords(err: SandboxError): { message: string; hint: string | undefined } {
  if (err instanceof EngineError && err.refusal) {
    const words = describeRefusal(err.refusal);
    return { message: words.message, hint: `engine: ${words.engine}` };
  }
  return { message: err.message, hint: err.hint };
}

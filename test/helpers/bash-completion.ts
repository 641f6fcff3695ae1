/**
 * Bash completion, two ways: calling the completion function with words set
 * by hand (fast, exact COMPREPLY), and typing into a real interactive bash on
 * a pseudo-terminal (script(1)), where readline splits the line at
 * COMP_WORDBREAKS and inserts what the function answered, as it does for a
 * user. The typed lines are then run: `sandbox` there is a shell function
 * that records its arguments, so the result is the completed command line.
 * The completion script's own `command sandbox` calls go to PATH.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export function hasCommand(name: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${name}`]).status === 0;
}

const quote = (word: string) => `'${word.replace(/'/g, "'\\''")}'`;

/** What `_sandbox` puts in COMPREPLY for `words` (the last one is being completed), and its stderr. */
export function bashReply(script: string, words: readonly string[], env: Record<string, string | undefined> = process.env): { reply: string[]; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), "sandbox-bash-reply-"));
  try {
    const file = join(dir, "sandbox.bash");
    writeFileSync(file, script);
    const r = spawnSync(
      "bash",
      ["-c", `source ${file}; COMP_WORDS=(${words.map(quote).join(" ")}); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); _sandbox; printf '%s\\n' "\${COMPREPLY[@]}"`],
      { encoding: "utf8", env: env as NodeJS.ProcessEnv, timeout: 30_000 },
    );
    return { reply: r.stdout.split("\n").filter(Boolean), stderr: r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Types each line followed by one TAB and Enter into an interactive bash
 * that loaded `script`, and returns the arguments each `sandbox` line ran
 * with (after "sandbox"), one string per line.
 */
export function bashTyped(script: string, lines: readonly string[], env: Record<string, string | undefined> = process.env): string[] {
  const dir = mkdtempSync(join(tmpdir(), "sandbox-bash-typed-"));
  try {
    const completion = join(dir, "sandbox.bash");
    const got = join(dir, "got");
    const rc = join(dir, "rc");
    writeFileSync(completion, script);
    writeFileSync(rc, `PS1='$ '\nsource ${completion}\nsandbox() { printf '%s\\n' "$*" >> ${got}; }\n`);
    // Readline reads what was typed ahead only after each completion ends, so no pauses are needed.
    const input = `${lines.map((line) => `${line}\t\n`).join("")}exit\n`;
    spawnSync("script", ["-qfc", `bash --rcfile ${rc} -i`, "/dev/null"], {
      input,
      env: { ...env, TERM: "dumb", INPUTRC: "/dev/null", HISTFILE: "/dev/null" } as NodeJS.ProcessEnv,
      timeout: 60_000,
    });
    return existsSync(got) ? readFileSync(got, "utf8").split("\n").slice(0, -1) : [];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Completion scripts: syntactically valid for their shell, complete every
 * command and every run flag (derived, so they cannot drift), and actually
 * complete in bash (always) and fish (when installed).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { bashScript, buildSpec, fishScript, flagSpecs, SUBCOMMANDS, zshScript } from "../../src/cli/completion/generate.ts";
import { COMMANDS } from "../../src/cli/commands/index.ts";
import { MAIN_HELP } from "../../src/cli/help.ts";
import { RUN_OPTIONS } from "../../src/cli/run-options.ts";
import { SETTINGS } from "../../src/config/settings.ts";

const ROOT = resolve(import.meta.dir, "../..");
const work = mkdtempSync(join(tmpdir(), "sandbox-completion-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const spec = buildSpec(Object.keys(COMMANDS), MAIN_HELP, SETTINGS);
const scripts = { bash: bashScript(spec), zsh: zshScript(spec), fish: fishScript(spec) };

function has(shell: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${shell}`]).status === 0;
}

/** `SHELL -n FILE`: parse without running. */
function syntaxCheck(shell: "bash" | "zsh" | "fish"): { code: number | null; err: string } {
  const file = join(work, `sandbox.${shell}`);
  writeFileSync(file, scripts[shell]);
  const r = spawnSync(shell, ["-n", file], { encoding: "utf8" });
  return { code: r.status, err: r.stderr };
}

/** What bash's completion offers for `words` (the last word is being completed). */
function bashComplete(words: string[]): string[] {
  const file = join(work, "complete.bash");
  writeFileSync(file, scripts.bash);
  const quoted = words.map((w) => `'${w.replace(/'/g, "'\\''")}'`).join(" ");
  const r = spawnSync("bash", ["-c", `source ${file}; COMP_WORDS=(${quoted}); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); _sandbox; printf '%s\\n' "\${COMPREPLY[@]}"`], { encoding: "utf8" });
  expect(r.stderr).toBe("");
  return r.stdout.split("\n").filter(Boolean);
}

describe("completion scripts", () => {
  test("bash: passes bash -n and mentions every run flag, long and short", () => {
    const r = syntaxCheck("bash");
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    for (const [name, option] of Object.entries(RUN_OPTIONS)) {
      expect(scripts.bash).toContain(` --${name} `);
      const short = (option as { short?: string }).short;
      if (short) expect(scripts.bash).toContain(` -${short} `);
    }
  });

  test("every script names every command", () => {
    for (const script of Object.values(scripts)) {
      for (const name of Object.keys(COMMANDS)) expect(script).toContain(name);
    }
  });

  test("zsh and fish mention every run flag too", () => {
    for (const name of Object.keys(RUN_OPTIONS)) {
      expect(scripts.zsh).toContain(`--${name}`);
      expect(scripts.fish).toContain(`-l ${name}`);
    }
  });

  test("values are offered only for value-taking run flags; subcommands only for real commands", () => {
    for (const flag of spec.runFlags.filter((f) => f.value)) {
      expect((RUN_OPTIONS as Record<string, { type: string }>)[flag.long]?.type).toBe("string");
    }
    for (const command of Object.keys(SUBCOMMANDS)) expect(COMMANDS).toHaveProperty(command);
  });

  test("descriptions come from the declarations' help text", () => {
    const d = new Map(flagSpecs(SETTINGS).map((f) => [f.long, f.description]));
    expect(d.get("image")).toStartWith("Image to run");
    expect(d.get("no-tty")).toBe(d.get("tty") as string); // `--tty / --no-tty` share one text
    expect(d.get("seccomp")).toContain("seccomp profile");
    expect(d.get("workspace-mode")).toContain("honours .sandboxignore"); // continuation lines joined
  });

  test.skipIf(!has("zsh"))("zsh: passes zsh -n and defines _sandbox after compinit", () => {
    const r = syntaxCheck("zsh");
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    const load = spawnSync("zsh", ["-f", "-c", `autoload -U compinit; compinit -u -d ${join(work, "zcompdump")}; source ${join(work, "sandbox.zsh")}; print -r -- $_comps[sandbox]`], { encoding: "utf8" });
    expect(load.stdout.trim()).toBe("_sandbox");
  });

  test.skipIf(!has("fish"))("fish: passes fish -n and completes run flags and their values", () => {
    const r = syntaxCheck("fish");
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    const file = join(work, "sandbox.fish");
    const complete = (line: string) =>
      spawnSync("fish", ["--no-config", "-c", `source ${file}; complete -C${JSON.stringify(line)}`], { encoding: "utf8" }).stdout.split("\n").map((l) => l.split("\t")[0]);
    expect(complete("sandbox run --pu")).toContain("--pull");
    expect(complete("sandbox run --pull ")).toEqual(expect.arrayContaining(["missing", "always", "never"]));
    expect(complete("sandbox ")).toEqual(expect.arrayContaining(["run", "image", "completion"]));
  });

  test("bash completes commands, run flags, their values, and stops at the command", () => {
    expect(bashComplete(["sandbox", "r"])).toEqual(["run"]);
    expect(bashComplete(["sandbox", "run", "--pu"])).toEqual(["--pull"]);
    expect(bashComplete(["sandbox", "run", "--pull", ""])).toEqual(["missing", "always", "never"]);
    expect(bashComplete(["sandbox", "-H", "unix:///x", "run", "--netw"])).toEqual(["--network"]);
    expect(bashComplete(["sandbox", "run", "--image", "img", "--workspace-mode", "c"])).toEqual(["copy"]);
    // After the command word, flags are the command's: no sandbox flags offered.
    expect(bashComplete(["sandbox", "run", "--image", "img", "sh", "--pu"])).not.toContain("--pull");
    expect(bashComplete(["sandbox", "run", "--", "--pu"])).not.toContain("--pull");
    expect(bashComplete(["sandbox", "completion", ""])).toEqual(["bash", "zsh", "fish"]);
  });

  test("sandbox completion SHELL prints the script; an unknown shell exits 125", () => {
    const ok = spawnSync(process.execPath, [join(ROOT, "src/main.ts"), "completion", "bash"], { encoding: "utf8" });
    expect(ok.status).toBe(0);
    expect(ok.stdout).toBe(scripts.bash);
    const bad = spawnSync(process.execPath, [join(ROOT, "src/main.ts"), "completion", "tcsh"], { encoding: "utf8" });
    expect(bad.status).toBe(125);
    expect(bad.stderr).toContain("bash, zsh, fish");
  });
});

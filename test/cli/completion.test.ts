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
import { bashScript, buildSpec, DYNAMIC_ARGUMENTS, fishScript, flagSpecs, SUBCOMMANDS, zshScript } from "../../src/cli/completion/generate.ts";
import { containerCandidates, imageCandidates } from "../../src/cli/completion/candidates.ts";
import type { ContainerSummary } from "../../src/engine/containers.ts";
import { bashReply, bashTyped, hasCommand } from "../helpers/bash-completion.ts";
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

  test("bash: a value bash split at ':' or '=' is one word again", () => {
    // COMP_WORDS as bash splits these lines (COMP_WORDBREAKS holds ':' and '=').
    expect(bashComplete(["sandbox", "run", "--image", "node", ":", "22", "--pu"])).toEqual(["--pull"]);
    expect(bashComplete(["sandbox", "-H", "unix", ":", "///x", "run", "--netw"])).toEqual(["--network"]);
    expect(bashComplete(["sandbox", "run", "--pull", "=", "ne"])).toEqual(["never"]);
    expect(bashComplete(["sandbox", "run", "--pull", "="])).toEqual(["missing", "always", "never"]);
    // The image value is not taken for the command: its words are still sandbox's flags.
    expect(bashComplete(["sandbox", "run", "--image", "node", ":", "22", "sh", "--pu"])).not.toContain("--pull");
  });

  test.skipIf(!hasCommand("script"))("bash: typed into a real interactive bash, values with ':' and '=' complete", () => {
    const got = bashTyped(scripts.bash, [
      "sandbox run --pull=ne",
      "sandbox run --workspace-mode=c",
      "sandbox run --image node:22 --pu",
      "sandbox -H unix:///x run --netw",
      "sandbox run --image node:22 -- --pu", // the command's flag: left alone
    ], { PATH: process.env.PATH });
    expect(got).toEqual([
      "run --pull=never",
      "run --workspace-mode=copy",
      "run --image node:22 --pull",
      "-H unix:///x run --network",
      "run --image node:22 -- --pu",
    ]);
  });

  test("the engine's objects: --image, inspect and image save ask 'sandbox __complete' in every shell", () => {
    expect(spec.runFlags.find((f) => f.long === "image")?.value).toEqual({ images: true });
    expect(spec.commands.find((c) => c.name === "inspect")?.arguments).toBe("containers");
    expect(spec.commands.find((c) => c.name === "image")?.subcommandArguments).toEqual({ save: "images" });
    for (const path of Object.keys(DYNAMIC_ARGUMENTS)) expect(COMMANDS).toHaveProperty(path.split(" ")[0] as string);
    expect(scripts.bash).toContain('command sandbox "${on[@]}" __complete "$1" 2>/dev/null');
    expect(scripts.bash).toContain('--image) __sandbox_offer images "$value" ;;');
    expect(scripts.bash).toMatch(/\n {4}inspect\)\n[^]*?__sandbox_offer containers "\$whole"/);
    expect(scripts.bash).toMatch(/\n {10}save\) [^\n]*__sandbox_offer images "\$whole"/);
    expect(scripts.zsh).toContain("command sandbox $on __complete $1 2>/dev/null");
    expect(scripts.zsh).toContain(":image:__sandbox_images'");
    expect(scripts.zsh).toContain("inspect) _arguments '1:sandbox container:__sandbox_containers'");
    expect(scripts.zsh).toContain("[[ $words[2] == save ]]; then\n            _alternative 'images:local image:__sandbox_images' 'files:file:_files'");
    expect(scripts.fish).toContain("command sandbox $on __complete $argv[1] 2>/dev/null");
    expect(scripts.fish).toContain("-l image -x -a '(__sandbox_candidates images)'");
    expect(scripts.fish).toContain("-n '__sandbox_using inspect; and not string match -q -- \"-*\" (commandline -ct)' -a '(__sandbox_candidates containers)'");
    expect(scripts.fish).toContain("-n '__sandbox_after_subcommand image save' -a '(__sandbox_candidates images)'");
  });

  test("bash: with no sandbox on PATH (or no engine), --image and inspect offer nothing and say nothing", () => {
    const env = { PATH: "/usr/bin:/bin" };
    expect(bashReply(scripts.bash, ["sandbox", "run", "--image", ""], env)).toEqual({ reply: [], stderr: "" });
    expect(bashReply(scripts.bash, ["sandbox", "inspect", ""], env)).toEqual({ reply: [], stderr: "" });
    expect(bashReply(scripts.bash, ["sandbox", "inspect", "--h"], env).reply).toEqual(["--help", "--host"]);
  });

  test("candidates: tagged images only, Podman's localhost/ left off; our containers by name, then short id", () => {
    const images = [
      { RepoTags: ["busybox:1", "localhost/mine:2"] },
      { RepoTags: ["<none>:<none>"] },
      { RepoTags: null },
      { RepoTags: ["busybox:1", "docker.io/library/node:22"] },
    ];
    expect(imageCandidates(images, "docker")).toEqual(["busybox:1", "docker.io/library/node:22", "localhost/mine:2"]);
    expect(imageCandidates(images, "podman")).toEqual(["busybox:1", "docker.io/library/node:22", "mine:2"]);
    const container = (name: string, id: string, managed: boolean): ContainerSummary => ({
      Id: id.repeat(64 / id.length),
      Names: [`/${name}`],
      Image: "busybox:1",
      Command: "true",
      Created: 0,
      State: "exited",
      Status: "Exited (0)",
      Labels: managed ? { "io.sandbox.managed": "true", "io.sandbox.agent": "generic" } : ({ sandbox: "true" } as Record<string, string>),
    });
    expect(containerCandidates([container("sandbox-b", "b", true), container("theirs", "c", false), container("sandbox-a", "a", true)])).toEqual([
      "sandbox-a\texited, generic, busybox:1",
      "sandbox-b\texited, generic, busybox:1",
      "aaaaaaaaaaaa\tsandbox-a",
      "bbbbbbbbbbbb\tsandbox-b",
    ]);
  });

  test("sandbox __complete takes images or containers only", () => {
    const bad = spawnSync(process.execPath, [join(ROOT, "src/main.ts"), "__complete", "volumes"], { encoding: "utf8" });
    expect(bad.status).toBe(125);
    expect(bad.stderr).toContain("images, containers");
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

import { describe, expect, test } from "bun:test";
import { main, unknownCommand } from "../../src/cli/app.ts";
import { findFlagProblem, flagForm, parseCommandLine } from "../../src/cli/args.ts";
import type { CommandContext } from "../../src/cli/context.ts";
import { COMMAND_NAMES } from "../../src/cli/commands/names.ts";
import { parseRunArgs } from "../../src/cli/run-options.ts";
import { UsageError } from "../../src/core/errors.ts";
import { renderError } from "../../src/cli/errors.ts";

/** The text and exit code the user sees for what `f` throws. */
function shown(f: () => unknown): { text: string; exitCode: number } {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return renderError(err, false);
  }
  throw new Error("did not throw");
}

describe("unknown commands: git/gh style", () => {
  test("a close command is suggested, the word is named", () => {
    expect(renderError(unknownCommand("rnu"), false).text.split("\n")[0]).toBe("sandbox: unknown command 'rnu'; did you mean 'run'?");
    expect(renderError(unknownCommand("pss"), false).text.split("\n")[0]).toBe("sandbox: unknown command 'pss'; did you mean 'ps'?");
  });

  test("no suggestion when nothing is close; the hint says 'sandbox run CMD' runs a command", () => {
    const { text, exitCode } = renderError(unknownCommand("python3"), false);
    expect(exitCode).toBe(125);
    expect(text).toStartWith("sandbox: unknown command 'python3'\n");
    expect(text).not.toContain("did you mean");
    expect(text).toContain("'sandbox run CMD'");
    expect(text).toContain("sandbox run python3");
    for (const name of COMMAND_NAMES) expect(text).toContain(name);
  });

  test("a flag before the command is an unknown flag", () => {
    expect(renderError(unknownCommand("--bogus"), false).text.split("\n")[0]).toBe("sandbox: unknown flag '--bogus'");
  });

  test("a command name with one letter too many suggests that command", () => {
    for (const name of COMMAND_NAMES) expect(renderError(unknownCommand(`${name}x`), false).text).toContain(`did you mean '${name}'`);
  });

  test("bare 'sandbox' prints the help and exits 0; the unknown command exits 125", async () => {
    let out = "";
    let err = "";
    const ctx = { env: {}, stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) } } as unknown as CommandContext;
    expect(await main([], ctx)).toBe(0);
    expect(out).toContain("sandbox run");
    expect(await main(["rnu", "ls"], ctx)).toBe(125);
    expect(err).toContain("sandbox: unknown command 'rnu'; did you mean 'run'?");
  });
});

describe("flag errors in sandbox's words", () => {
  test("the change-set commands each take their own flags: another's is refused before anything is read", async () => {
    let err = "";
    const ctx = { env: { HOME: "/nonexistent" }, homeDir: "/nonexistent", cwd: "/", stdout: { write: () => true }, stderr: { write: (s: string) => (err += s) } } as unknown as CommandContext;
    for (const [argv, flag] of [[["diff", "x", "--force"], "--force"], [["discard", "x", "--json"], "--json"], [["changes", "--stat"], "--stat"], [["apply", "x", "--exit-code"], "--exit-code"]] as const) {
      err = "";
      expect(await main([...argv], ctx)).toBe(125);
      expect(err.split("\n")[0]).toBe(`sandbox ${argv[0]}: unknown flag '${flag}'`);
    }
  });

  test("a flag without its value names the flag and the form", () => {
    expect(shown(() => parseRunArgs(["-e"])).text.split("\n")[0]).toBe("sandbox run: --env needs a value such as KEY=VALUE or KEY");
    expect(shown(() => parseRunArgs(["--memory"])).text.split("\n")[0]).toBe("sandbox run: --memory needs a size such as 4g");
    expect(shown(() => parseRunArgs(["--timeout"])).text.split("\n")[0]).toBe("sandbox run: --timeout needs a duration such as 30m or 2h");
  });

  test("--memory -1: refused, saying negative values and -1 as no-limit are not accepted (docker refuses it too)", () => {
    for (const argv of [["--memory", "-1", "sh"], ["-m", "-1", "sh"]]) {
      const { text, exitCode } = shown(() => parseRunArgs(argv));
      expect(exitCode).toBe(125);
      expect(text.split("\n")[0]).toBe(`sandbox run: --memory needs a size such as 4g (got '-1'; negative values are not accepted and -1 does not mean "no limit")`);
    }
  });

  test("a value that reads as the next flag: how to give a value starting with '-'", () => {
    const { text } = shown(() => parseRunArgs(["--workspace", "--quiet", "sh"]));
    expect(text).toContain("sandbox run: --workspace needs a directory (got '--quiet', which reads as the next flag)");
    expect(text).toContain("--workspace=--quiet");
  });

  test("unknown flags are named, with a close flag suggested", () => {
    expect(shown(() => parseRunArgs(["--imgae", "x", "sh"])).text.split("\n")[0]).toBe("sandbox run: unknown flag '--imgae'; did you mean '--image'?");
    expect(shown(() => parseRunArgs(["--bogus", "sh"])).text.split("\n")[0]).toBe("sandbox run: unknown flag '--bogus'");
    expect(shown(() => parseRunArgs(["-qZ", "sh"])).text.split("\n")[0]).toBe("sandbox run: unknown flag '-Z'");
  });

  test("a switch given a value", () => {
    expect(shown(() => parseRunArgs(["--quiet=1", "sh"])).text.split("\n")[0]).toBe("sandbox run: --quiet takes no value (got '--quiet=1')");
  });

  test("other commands: the shared flags' forms, a plain 'a value' otherwise; never parseArgs' sentences", () => {
    const options = { host: { type: "string", short: "H" }, other: { type: "string" }, json: { type: "boolean" } } as const;
    expect(shown(() => parseCommandLine(["-H"], options, "ps")).text.split("\n")[0]).toBe(
      "sandbox ps: --host needs an engine address such as unix:///var/run/docker.sock or tcp://host:2376",
    );
    expect(shown(() => parseCommandLine(["--other"], options, "ps")).text.split("\n")[0]).toBe("sandbox ps: --other needs a value");
    for (const argv of [["-H"], ["--other", "-1"], ["--nope"], ["--json=1"], ["-x"]]) {
      const { text } = shown(() => parseCommandLine(argv, options, "ps"));
      expect(text).not.toMatch(/Option '|ambiguous|argument missing|Unknown option|To specify/);
      expect(text).toContain("Run 'sandbox ps --help'");
    }
  });

  test("the walk finds what parseArgs refused", () => {
    const options = { env: { type: "string", short: "e" }, quiet: { type: "boolean", short: "q" } } as const;
    expect(findFlagProblem(["-qe"], options)).toEqual({ kind: "missing", long: "env" });
    expect(findFlagProblem(["-qeA=1"], options)).toBeUndefined();
    expect(findFlagProblem(["-e", "-"], options)).toBeUndefined();
    expect(findFlagProblem(["--", "--nope"], options)).toBeUndefined();
    expect(findFlagProblem(["x", "--nope"], options)).toEqual({ kind: "unknown", flag: "--nope" });
    expect(flagForm("memory", { memory: "SIZE" })).toBe("a size such as 4g");
    expect(flagForm("x", { x: "WORD|OTHER" })).toBe("a value such as WORD or OTHER");
  });
});

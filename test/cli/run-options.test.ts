import { describe, expect, test } from "bun:test";
import { parseRunArgs } from "../../src/cli/run-options.ts";
import { UsageError } from "../../src/core/errors.ts";

describe("parseRunArgs", () => {
  test("flags stop at the first positional", () => {
    const o = parseRunArgs(["--image", "x", "python", "-c", "print(1)", "--image", "y"]);
    expect(o.image).toBe("x");
    expect(o.command).toEqual(["python", "-c", "print(1)", "--image", "y"]);
  });
  test("-- ends our flags", () => {
    expect(parseRunArgs(["--", "--weird"]).command).toEqual(["--weird"]);
  });
  test("inline values and grouped shorts", () => {
    const o = parseRunArgs(["--memory=1g", "-it", "-e", "A=b", "sh"]);
    expect(o.memoryBytes).toBe(1024 ** 3);
    expect(o.tty).toBe(true);
    expect(o.interactive).toBe(true);
    expect(o.env).toEqual([{ name: "A", value: "b", fromHost: false }]);
  });
  test("--no-tty after --tty wins", () => {
    expect(parseRunArgs(["--tty", "--no-tty", "sh"]).tty).toBe(false);
  });
  test.each([
    [["--memory", "4XB", "sh"], "--memory"],
    [["--timeout", "soon", "sh"], "--timeout"],
    [["--cpus", "lots", "sh"], "--cpus"],
    [["--pull", "sometimes", "sh"], "--pull"],
    [["--bogus", "sh"], "--bogus"],
    [[], "no command"],
  ])("rejects %p", (argv, needle) => {
    let caught: unknown;
    try {
      parseRunArgs(argv);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(UsageError);
    expect((caught as UsageError).exitCode).toBe(125);
    expect((caught as UsageError).message).toContain(needle);
  });
});

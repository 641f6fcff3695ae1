/**
 * Every `sandbox run` example in the README's usage and in `sandbox run
 * --help` works as written with the image it selects (issue #16: `pytest -q`
 * and `gh pr list` picked debian:bookworm-slim, which has neither). The
 * image is chosen as a run chooses it (core/image-choice.ts, no config);
 * what each built-in default image has on its PATH is a list of facts about
 * those official images, kept here. An agent's image is built to hold it.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { RUN_HELP } from "../../src/cli/run-help.ts";
import { parseRunArgs } from "../../src/cli/run-options.ts";
import { commandName, detectAgent } from "../../src/core/agents.ts";
import { chooseImage } from "../../src/core/image-choice.ts";

/** The commands each built-in default image has (Debian's coreutils and sh; the official python and node images' own). */
const ON_PATH: Record<string, readonly string[]> = {
  "debian:bookworm-slim": ["sh", "cat", "echo", "sha256sum", "ls", "env", "true"],
  "python:3.12-slim": ["python3", "python", "pip", "sh"],
  "node:22-slim": ["node", "npm", "npx", "sh"],
};

/** `sandbox run ...` lines: from the README's sh blocks (a pipe before it allowed), and --help's Examples. */
function examples(): string[] {
  const readme = readFileSync(join(import.meta.dir, "../../README.md"), "utf8");
  const blocks = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1] as string);
  const fromReadme = blocks.flatMap((b) => b.split("\n")).map((line) => line.replace(/\s+#.*$/, "").replace(/^.*\|\s*/, "").trim());
  const help = RUN_HELP.slice(RUN_HELP.indexOf("Examples:")).split("\n").map((line) => line.replace(/^.*\|\s*/, "").trim());
  return [...fromReadme, ...help].filter((line) => line.startsWith("sandbox run ") && !line.includes("<"));
}

/** A shell-like split, enough for the examples: single quotes group. */
function words(line: string): string[] {
  return [...line.matchAll(/'([^']*)'|(\S+)/g)].map((m) => (m[1] ?? m[2]) as string);
}

describe("the examples work as written", () => {
  const lines = examples();

  test("there are examples from both places", () => {
    expect(lines.filter((l) => l.includes("npm publish")).length).toBe(2);
    expect(lines.length).toBeGreaterThan(10);
  });

  for (const line of examples()) {
    test(line, () => {
      const args = parseRunArgs(words(line).slice(2));
      const agent = detectAgent(args.command);
      if (agent.kind === "agent") return; // its image is built from sandbox's recipe to hold the agent
      const { image } = chooseImage({ ...(args.image ? { flag: args.image } : {}), agent, command: commandName(args.command[0] ?? "") });
      expect(ON_PATH[image] ?? [`(no facts for ${image})`]).toContain(commandName(args.command[0] ?? ""));
    });
  }
});

import { describe, expect, test } from "bun:test";
import { AGENTS, agentNames, commandName, detectAgent, GENERIC } from "../../src/core/agents.ts";
import { UsageError } from "../../src/core/errors.ts";
import { recipeFor, unsupportedFor } from "../../src/core/recipes.ts";

const EXPECTED: Record<string, string> = {
  claude: "claude",
  codex: "codex",
  gemini: "gemini",
  opencode: "opencode",
  kilo: "kilocode",
  kilocode: "kilocode",
  aider: "aider",
  goose: "goose",
  amp: "amp",
  python: "python",
  python3: "python",
  pip: "python",
  pip3: "python",
  uv: "uv",
  uvx: "uv",
  node: "node",
  npm: "node",
  npx: "node",
  pnpm: "pnpm",
  yarn: "node",
  bun: "bun",
  bunx: "bun",
  deno: "deno",
  go: "go",
  cargo: "rust",
  rustc: "rust",
  ruby: "ruby",
  gem: "ruby",
  bundle: "ruby",
  php: "php",
  composer: "composer",
  java: "java",
  javac: "java",
  mvn: "maven",
  gradle: "gradle",
};

describe("detectAgent", () => {
  for (const [command, profile] of Object.entries(EXPECTED)) {
    test(`${command} -> ${profile}`, () => {
      expect(detectAgent([command, "--help"]).name).toBe(profile);
    });
  }

  test("the eight coding agents are agents with their own image", () => {
    for (const name of ["claude", "codex", "gemini", "opencode", "kilocode", "aider", "goose", "amp"]) {
      const profile = detectAgent([name]);
      expect(profile.kind).toBe("agent");
      // Built from sandbox's recipe on first use; no registry namespace nobody publishes to.
      expect(profile.image).toBe(`sandbox/${name}:<recipe>`);
      expect(profile.image).not.toContain("ghcr.io");
      expect(profile.stateVolume).toBe(`sandbox-state-${name}`);
      expect(profile.stateDir).toBeString();
    }
  });

  test("runtimes use official images", () => {
    expect(detectAgent(["python3"]).image).toBe("python:3.12-slim");
    expect(detectAgent(["node"]).image).toBe("node:22-slim");
    expect(detectAgent(["bun"]).image).toBe("oven/bun:1");
    expect(detectAgent(["deno"]).image).toBe("denoland/deno:2");
    expect(detectAgent(["go"]).image).toBe("golang:1.23");
    expect(detectAgent(["cargo"]).image).toBe("rust:1");
    expect(detectAgent(["ruby"]).image).toBe("ruby:3.3-slim");
    expect(detectAgent(["php"]).image).toBe("php:8.3-cli");
    expect(detectAgent(["java"]).image).toBe("eclipse-temurin:21");
    expect(detectAgent(["npm"]).kind).toBe("runtime");
  });

  test("pnpm runs through corepack, which the node image ships", () => {
    expect(detectAgent(["pnpm", "install"]).entrypoint).toEqual(["corepack"]);
  });

  test("auth variables are listed per agent", () => {
    expect(detectAgent(["claude"]).authEnv).toEqual(["ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN"]);
    expect(detectAgent(["codex"]).authEnv).toEqual(["OPENAI_API_KEY"]);
    expect(detectAgent(["gemini"]).authEnv).toEqual(["GEMINI_API_KEY", "GOOGLE_API_KEY"]);
    expect(detectAgent(["aider"]).authEnv).toContain("OPENAI_API_KEY");
    expect(detectAgent(["aider"]).authEnv).toContain("ANTHROPIC_API_KEY");
    expect(detectAgent(["amp"]).authEnv).toEqual(["AMP_API_KEY"]);
    expect(detectAgent(["python"]).authEnv).toEqual([]);
  });

  test("the path is stripped from the command", () => {
    expect(detectAgent(["/usr/bin/python3", "x.py"]).name).toBe("python");
    expect(detectAgent(["./node_modules/.bin/claude"]).name).toBe("claude");
    expect(detectAgent(["/usr/local/bin/kilo/"]).name).toBe("kilocode");
  });

  test("versioned python names are python", () => {
    for (const command of ["python3.12", "python3.9", "/usr/bin/python3.11", "pip3.12", "python2"]) {
      expect(detectAgent([command]).name).toBe("python");
    }
    expect(detectAgent(["python3.12-config"]).name).toBe("generic");
    expect(detectAgent(["pythonista"]).name).toBe("generic");
  });

  test("anything else is generic", () => {
    expect(detectAgent(["bash", "-c", "ls"])).toBe(GENERIC);
    expect(detectAgent(["make"]).image).toBe("debian:bookworm-slim");
    expect(detectAgent(["claude-wrapper"]).name).toBe("generic");
    expect(detectAgent(["Claude"]).name).toBe("generic");
    expect(detectAgent([]).name).toBe("generic");
    expect(detectAgent([""]).name).toBe("generic");
  });

  test("an override wins over the command", () => {
    expect(detectAgent(["bash"], "claude").name).toBe("claude");
    expect(detectAgent(["python3"], "generic").name).toBe("generic");
    expect(detectAgent(["bash"], "kilo").name).toBe("kilocode");
    expect(detectAgent(["bash"], "python3.12").name).toBe("python");
    expect(detectAgent(["bash"], " codex ").name).toBe("codex");
  });

  test("an empty override means no override", () => {
    expect(detectAgent(["claude"], "").name).toBe("claude");
    expect(detectAgent(["claude"], undefined).name).toBe("claude");
  });

  test("an unknown override is a usage error listing the known names", () => {
    let error: unknown;
    try {
      detectAgent(["bash"], "claud");
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).exitCode).toBe(125);
    expect((error as UsageError).message).toContain('"claud"');
    for (const name of agentNames()) expect((error as UsageError).message).toContain(name);
  });
});

describe("registry", () => {
  test("names and commands are unique", () => {
    const names = agentNames();
    expect(new Set(names).size).toBe(names.length);
    const commands = AGENTS.flatMap((profile) => profile.commands);
    expect(new Set(commands).size).toBe(commands.length);
  });

  test("every agent has a recipe in the binary, or says why not", () => {
    for (const profile of AGENTS.filter((p) => p.kind === "agent")) {
      const recipe = recipeFor(profile.name);
      if (recipe) expect(recipe.text).toContain("FROM ${BASE}");
      else expect(unsupportedFor(profile.name)?.reason).toBeString();
    }
    expect(unsupportedFor("goose")).toBeDefined();
  });

  test("commandName", () => {
    expect(commandName("/usr/bin/env")).toBe("env");
    expect(commandName("node")).toBe("node");
    expect(commandName("/")).toBe("");
  });
});

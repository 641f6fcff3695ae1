import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { configCandidates, effectiveSettings, globalConfigPath, type LoadInput, loadConfig, loadConfigFiles, mergeSettings } from "../../src/config/load.ts";
import { withOverride } from "../../src/config/resolve.ts";
import { parseYaml } from "../../src/config/yaml.ts";
import { ConfigError } from "../../src/core/errors.ts";

let root: string;
let home: string;
let workspace: string;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "sandbox-config-"));
  home = join(root, "home");
  workspace = join(root, "project");
  mkdirSync(home, { recursive: true });
  mkdirSync(workspace, { recursive: true });
});

afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

function write(path: string, text: string): string {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
  return path;
}

function readFile(path: string): string | undefined {
  return existsSync(path) ? readFileSync(path, "utf8") : undefined;
}

/** The workspace file is trusted unless a test says otherwise (trust has tests of its own below). */
function input(env: Record<string, string | undefined> = {}): LoadInput {
  return { env, homeDir: home, workspace, readFile, parseYaml, trust: () => "trusted" };
}

const xdgPath = () => join(home, ".config", "sandbox", "config.yaml");
const legacyPath = () => join(home, ".sandbox", "config.yaml");
const workspacePath = () => join(workspace, ".sandbox.yml");

function loadError(env: Record<string, string | undefined> = {}): ConfigError {
  try {
    loadConfig(input(env));
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).exitCode).toBe(125);
    return error as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

describe("finding the global config", () => {
  test("no files at all: empty config, every setting a default", () => {
    const loaded = loadConfig(input());
    expect(loaded.global).toEqual({});
    expect(loaded.globalPath).toBeUndefined();
    expect(loaded.legacyPath).toBeUndefined();
    expect(loaded.workspaceFile).toBeUndefined();
    expect(loaded.sources["security.memory"]).toBe("default");
    const settings = effectiveSettings(loaded);
    expect(settings.memoryBytes).toEqual({ value: 4 * 1024 ** 3, source: "default" });
    expect(settings.timeoutMs).toEqual({ value: 30 * 60_000, source: "default" });
  });

  test("~/.config/sandbox/config.yaml by default", () => {
    write(xdgPath(), "security:\n  memory: 8g\n");
    const loaded = loadConfig(input());
    expect(loaded.globalPath).toBe(xdgPath());
    expect(loaded.global.security?.memory).toBe("8g");
    expect(loaded.sources["security.memory"]).toBe(xdgPath());
  });

  test("$XDG_CONFIG_HOME when set", () => {
    const xdg = join(root, "xdg");
    const path = write(join(xdg, "sandbox", "config.yaml"), "security:\n  pids: 100\n");
    write(xdgPath(), "security:\n  pids: 200\n");
    const loaded = loadConfig(input({ XDG_CONFIG_HOME: xdg }));
    expect(loaded.globalPath).toBe(path);
    expect(loaded.global.security?.pids).toBe(100);
  });

  test("a relative $XDG_CONFIG_HOME is ignored, as the spec says", () => {
    expect(globalConfigPath({ XDG_CONFIG_HOME: "relative" }, "/home/u")).toEqual({
      path: "/home/u/.config/sandbox/config.yaml",
      explicit: false,
    });
  });

  test("$SANDBOX_CONFIG replaces both the XDG and the legacy file", () => {
    const path = write(join(root, "custom.yaml"), "container:\n  timeout: 5m\n");
    write(xdgPath(), "security:\n  pids: 200\n");
    write(legacyPath(), "security:\n  memory: 1g\n");
    const loaded = loadConfig(input({ SANDBOX_CONFIG: path }));
    expect(loaded.globalPath).toBe(path);
    expect(loaded.legacyPath).toBeUndefined();
    expect(loaded.global).toEqual({ container: { timeout: "5m" } });
  });

  test("$SANDBOX_CONFIG must exist", () => {
    const missing = join(root, "nope.yaml");
    const error = loadError({ SANDBOX_CONFIG: missing });
    expect(error.message).toContain(missing);
    expect(error.message).toContain("SANDBOX_CONFIG");
  });

  test("legacy ~/.sandbox/config.yaml is read; the XDG file wins key by key", () => {
    write(legacyPath(), "security:\n  memory: 1g\n  pids: 64\nimages:\n  python: legacy/python\n  node: legacy/node\n");
    write(xdgPath(), "security:\n  memory: 2g\nimages:\n  python: xdg/python\n");
    const loaded = loadConfig(input());
    expect(loaded.legacyPath).toBe(legacyPath());
    expect(loaded.globalPath).toBe(xdgPath());
    expect(loaded.global).toEqual({
      security: { memory: "2g", pids: 64 },
      images: { python: "xdg/python", node: "legacy/node" },
    });
    expect(loaded.sources["security.memory"]).toBe(xdgPath());
    expect(loaded.sources["security.pids"]).toBe(legacyPath());
    expect(loaded.sources["images.node"]).toBe(legacyPath());
    expect(loaded.sources["images.python"]).toBe(xdgPath());
  });

  test("legacy file alone", () => {
    write(legacyPath(), "container:\n  network: none\n");
    const loaded = loadConfig(input());
    expect(loaded.globalPath).toBeUndefined();
    expect(loaded.global.container?.network).toBe("none");
  });

  test("lists are replaced, not concatenated", () => {
    write(legacyPath(), "security:\n  cap_add: [NET_ADMIN]\n");
    write(xdgPath(), "security:\n  cap_add: [SYS_PTRACE]\n");
    expect(loadConfig(input()).global.security?.cap_add).toEqual(["SYS_PTRACE"]);
  });

  test("empty files and empty sections are fine", () => {
    write(xdgPath(), "# nothing yet\nsecurity:\ncontainer:\n");
    write(workspacePath(), "");
    const loaded = loadConfig(input());
    expect(loaded.global).toEqual({});
    expect(loaded.workspaceFile).toEqual({});
  });

  test("an unreadable file is a ConfigError", () => {
    mkdirSync(xdgPath(), { recursive: true }); // a directory where the file should be
    const error = loadError();
    expect(error.message).toContain(xdgPath());
  });
});

describe("errors name the file, the key and what was expected", () => {
  test("bad YAML", () => {
    const path = write(xdgPath(), "security:\n  memory: [4g\ncontainer: {\n");
    const error = loadError();
    expect(error.message).toContain(path);
    expect(error.message).toContain("invalid YAML");
    expect(error.message).toMatch(/line \d+, column \d+/);
  });

  test("duplicate keys name the key", () => {
    write(xdgPath(), "security:\n  memory: 4g\n  memory: 8g\n");
    const error = loadError();
    expect(error.message).toContain(xdgPath());
    expect(error.message).toContain("security.memory: invalid YAML");
  });

  test("unknown key", () => {
    write(xdgPath(), "security:\n  memroy: 4g\n");
    const error = loadError();
    expect(error.message).toContain(xdgPath());
    expect(error.message).toContain("security.memroy: unknown key (expected one of: memory,");
  });

  test("memory: 4XB", () => {
    write(xdgPath(), "security:\n  memory: 4XB\n");
    const error = loadError();
    expect(error.message).toBe(
      `invalid configuration in ${xdgPath()}:\n  security.memory: expected a size such as 512m, 4g or 4GiB, got "4XB"`,
    );
    expect(error.hint).toBeString();
  });

  test("timeout: soon", () => {
    write(xdgPath(), "container:\n  timeout: soon\n");
    expect(loadError().message).toContain('container.timeout: expected a duration such as 90s, 30m, 1h30m or 500ms, got "soon"');
  });

  test("wrong types, several at once, one line each", () => {
    write(xdgPath(), "container:\n  remove: yes\n  timeout: soon\nsecurity:\n  cpus: many\n");
    const lines = loadError().message.split("\n");
    expect(lines[0]).toBe(`invalid configuration in ${xdgPath()}:`);
    expect(lines.slice(1)).toEqual([
      '  container.timeout: expected a duration such as 90s, 30m, 1h30m or 500ms, got "soon"',
      '  container.remove: expected true or false, got "yes"',
      '  security.cpus: expected a positive number of CPUs such as 1.5, got "many"',
    ]);
  });

  test("an error in the legacy file names the legacy file", () => {
    write(legacyPath(), "security:\n  memory: lots\n");
    write(xdgPath(), "security:\n  memory: 4g\n");
    expect(loadError().message).toContain(legacyPath());
  });

  test("a top-level list", () => {
    write(xdgPath(), "- a\n- b\n");
    expect(loadError().message).toContain("(top level): expected a mapping");
  });

  test("alias bombs are refused", () => {
    const lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
    for (let i = 0; i < 12; i++) lines.push(`${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10).fill(`*${String.fromCharCode(97 + i)}`).join(", ")}]`);
    write(xdgPath(), `${lines.join("\n")}\n`);
    expect(loadError().message).toContain(xdgPath());
  });
});

describe("workspace file", () => {
  test("is read from the workspace root", () => {
    write(workspacePath(), "image: python:3.11\nsetup:\n  - pip install -e .\nenv:\n  DEBUG: 1\nnetwork: none\ntimeout: 2h\n");
    const loaded = loadConfig(input());
    expect(loaded.workspacePath).toBe(workspacePath());
    expect(loaded.workspaceFile).toEqual({
      image: "python:3.11",
      setup: ["pip install -e ."],
      env: { DEBUG: "1" },
      network: "none",
      timeout: "2h",
    });
  });

  test("refuses cap_add", () => {
    write(workspacePath(), "cap_add: [SYS_ADMIN]\n");
    const error = loadError();
    expect(error.message).toContain(workspacePath());
    expect(error.message).toContain("cap_add: not allowed in .sandbox.yml");
    expect(error.message).toContain("~/.config/sandbox/config.yaml");
  });

  test("refuses security: {seccomp: unconfined}", () => {
    write(workspacePath(), "security:\n  seccomp: unconfined\n");
    const error = loadError();
    expect(error.message).toContain(workspacePath());
    expect(error.message).toContain("security: not allowed in .sandbox.yml");
    expect(error.message).toContain("~/.config/sandbox/config.yaml");
  });

  test("refuses forwarding host variables", () => {
    write(workspacePath(), "env:\n  AWS_SECRET_ACCESS_KEY:\n");
    expect(loadError().message).toContain("env.AWS_SECRET_ACCESS_KEY: has no value; forwarding host variables");
  });
});

describe("precedence: workspace file > global file > defaults", () => {
  test("each setting carries its source", () => {
    write(xdgPath(), "container:\n  timeout: 1h\n  network: my-net\nsecurity:\n  memory: 2g\n  cap_add: [CAP_NET_ADMIN, NET_ADMIN]\n");
    write(workspacePath(), "timeout: 10m\n");
    const settings = effectiveSettings(loadConfig(input()));
    expect(settings.timeoutMs).toEqual({ value: 600_000, source: workspacePath() });
    expect(settings.network).toEqual({ value: "my-net", source: xdgPath() });
    expect(settings.memoryBytes).toEqual({ value: 2 * 1024 ** 3, source: xdgPath() });
    expect(settings.capAdd).toEqual({ value: ["NET_ADMIN"], source: xdgPath() });
    expect(settings.pids).toEqual({ value: 512, source: "default" });
    expect(settings.workspacePath).toEqual({ value: "/work", source: "default" });
  });

  test("a mapping set in a file has that file as its source, not the default", () => {
    write(xdgPath(), "images:\n  python: python:3.12\n");
    const settings = effectiveSettings(loadConfig(input()));
    expect(settings.images.source).toBe(xdgPath());
    expect(settings.agents.source).toBe("default");
  });

  test("the workspace file may tighten the network", () => {
    write(workspacePath(), "network: none\n");
    expect(effectiveSettings(loadConfig(input())).network).toEqual({ value: "none", source: workspacePath() });
  });

  test("the workspace file cannot loosen network: none; a flag still can", () => {
    write(xdgPath(), "container:\n  network: none\n");
    write(workspacePath(), "network: bridge\n");
    const settings = effectiveSettings(loadConfig(input()));
    expect(settings.network.value).toBe("none");
    expect(settings.network.source).toBe(xdgPath());
    expect(settings.network.note).toContain("--network bridge");
    const flagged = withOverride(settings, "network", "bridge", "flag --network");
    expect(flagged.network).toEqual({ value: "bridge", source: "flag --network" });
  });

  test("the workspace file cannot step around an egress allow-list", () => {
    write(xdgPath(), "network:\n  egress: [api.anthropic.com]\n");
    write(workspacePath(), "network: other-net\n");
    const settings = effectiveSettings(loadConfig(input()));
    expect(settings.network.value).toBe("bridge");
    expect(settings.network.note).toContain("--network other-net");
    write(xdgPath(), "container:\n  network: corp\nnetwork:\n  egress: [api.anthropic.com]\n");
    write(workspacePath(), "network: bridge\n");
    const loosen = effectiveSettings(loadConfig(input()));
    expect(loosen.network.value).toBe("corp");
    expect(loosen.network.note).toContain("network.egress");
  });

  test("mergeSettings is pure and takes the layers directly", () => {
    const settings = mergeSettings(
      { config: { security: { pids: 64, user: 1000 } }, sources: { "security.pids": "/cfg.yaml" } },
      { file: { timeout: 90 }, path: "/ws/.sandbox.yml" },
    );
    expect(settings.pids).toEqual({ value: 64, source: "/cfg.yaml" });
    expect(settings.user.value).toBe("1000");
    expect(settings.timeoutMs).toEqual({ value: 90_000, source: "/ws/.sandbox.yml" });
    expect(settings.readOnlyRoot).toEqual({ value: true, source: "default" });
  });
});

describe("loadConfigFiles (the YAML parser loaded on demand)", () => {
  const base = () => ({ env: {}, homeDir: home, workspace, trust: () => "trusted" as const });

  test("with no files it reads each candidate once and gives the defaults", async () => {
    const reads: string[] = [];
    const loaded = await loadConfigFiles({ ...base(), readFile: (path) => (reads.push(path), readFile(path)) });
    expect(loaded.global).toEqual({});
    expect(reads.sort()).toEqual(configCandidates({}, home, workspace).sort());
  });

  test("gives what loadConfig gives when files exist, still reading each once", async () => {
    write(xdgPath(), "security:\n  memory: 2g\n");
    write(workspacePath(), "network: none\n");
    const reads: string[] = [];
    const loaded = await loadConfigFiles({ ...base(), readFile: (path) => (reads.push(path), readFile(path)) });
    expect(loaded).toEqual(loadConfig(input()));
    expect(new Set(reads).size).toBe(reads.length);
  });

  test("blank files (the guard's empty .sandbox.yml) come out as the YAML parser reads them, and anything else is parsed", async () => {
    const outcome = async (load: () => unknown) => {
      try {
        return { value: await load() };
      } catch (error) {
        return { error: (error as Error).message };
      }
    };
    // The last three are not blank to YAML: a non-breaking space and a comment are text, a tab then a key is an error.
    for (const text of ["", " \n\n", "\t\r\n", "\uFEFF\n", "\u00a0\n", "# nothing\n", "\tnetwork: none\n"]) {
      write(xdgPath(), text);
      write(workspacePath(), text);
      const parsed = await outcome(() => loadConfig(input()));
      expect(await outcome(() => loadConfigFiles({ ...base(), readFile }))).toEqual(parsed);
    }
  });

  test("an unreadable file is reported once, as loadConfig reports it", async () => {
    const failing = { ...base(), readFile: (path: string) => {
      if (path === xdgPath()) throw new Error("EACCES: permission denied");
      return undefined;
    } };
    const error = await loadConfigFiles(failing).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toBe(`cannot read ${xdgPath()}: EACCES: permission denied`);
  });
});

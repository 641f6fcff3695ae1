import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { effectiveSettings, loadConfig, type LoadInput } from "../../src/config/load.ts";
import { settingNotes, withFlags } from "../../src/config/resolve.ts";
import { SETTINGS } from "../../src/config/settings.ts";
import { ignoredWorkspaceNote, summarizeWorkspaceFile, workspaceFileLines } from "../../src/config/trust.ts";
import { parseYaml } from "../../src/config/yaml.ts";
import { parseRunArgs } from "../../src/cli/run-options.ts";
import { ConfigError, UsageError } from "../../src/core/errors.ts";
import type { TrustState } from "../../src/core/trust.ts";

const HOME = "/home/me";
const WS = "/home/me/project";
const USER = `${HOME}/.config/sandbox/config.yaml`;
const FILE = `${WS}/.sandbox.yml`;

function load(files: Record<string, string>, trust?: (sha256: string) => TrustState) {
  const input: LoadInput = { env: {}, homeDir: HOME, workspace: WS, readFile: (path) => files[path], parseYaml, ...(trust ? { trust } : {}) };
  return loadConfig(input);
}

const sha = (text: string) => createHash("sha256").update(text).digest("hex");
const trusted = () => "trusted" as const;

describe("consent for .sandbox.yml", () => {
  const text = "image: evil/img\nsetup:\n  - touch /work/marker\nenv:\n  GREETING: hi\n";

  test("an untrusted file is not obeyed, and is described in one line", () => {
    const loaded = load({ [FILE]: text }, () => "untrusted");
    expect(loaded.workspaceFile).toBeUndefined();
    expect(loaded.workspaceTrust).toEqual({ state: "untrusted", sha256: sha(text), path: FILE });
    const settings = effectiveSettings(loaded);
    expect(settings.setup.value).toEqual([]);
    expect(settings.workspaceImage.value).toBeUndefined();
    const note = ignoredWorkspaceNote(loaded.ignoredWorkspace!, WS);
    expect(note).not.toContain("\n");
    expect(note).toContain(`ignored ${FILE}: you have not trusted it`);
    expect(note).toContain("image evil/img, 1 setup step, env GREETING");
    expect(note).toContain(`'sandbox trust' in ${WS}`);
    expect(note).toContain("--trust-workspace-config");
  });

  test("no answer from the caller counts as untrusted", () => {
    expect(load({ [FILE]: text }).workspaceFile).toBeUndefined();
  });

  test("the loader asks about the sha256 of exactly this text", () => {
    const asked: string[] = [];
    load({ [FILE]: text }, (s) => (asked.push(s), "untrusted"));
    expect(asked).toEqual([sha(text)]);
  });

  test("a trusted file (or one obeyed by the flag) is obeyed", () => {
    for (const state of ["trusted", "flag"] as const) {
      const loaded = load({ [FILE]: text }, () => state);
      expect(loaded.ignoredWorkspace).toBeUndefined();
      expect(effectiveSettings(loaded).setup.value).toEqual(["touch /work/marker"]);
    }
  });

  test("a changed file says so", () => {
    const loaded = load({ [FILE]: text }, () => "changed");
    expect(ignoredWorkspaceNote(loaded.ignoredWorkspace!, WS)).toContain("it changed since you trusted it");
  });

  test("an untrusted file that is invalid does not fail the run: it is ignored, and the line says it is not valid", () => {
    const bad = load({ [FILE]: "cap_add: [SYS_ADMIN]\n" }, () => "untrusted");
    expect(bad.ignoredWorkspace?.wouldSet).toBe("cap_add");
    expect(bad.ignoredWorkspace?.invalid).toContain("cap_add");
    const yaml = load({ [FILE]: "a: [\n" }, () => "untrusted");
    expect(yaml.ignoredWorkspace?.invalid).toBe("it is not valid YAML");
    // Trusted, the same file fails as before.
    expect(() => load({ [FILE]: "cap_add: [SYS_ADMIN]\n" }, trusted)).toThrow(ConfigError);
  });

  test("what it would set is escaped: a repository cannot forge lines or drive the terminal", () => {
    const summary = summarizeWorkspaceFile({ image: "x\u001b[2J", setup: ["a", "b"], "\u001b]0;t\u0007": 1 });
    expect(summary).not.toMatch(/[\u0000-\u001f]/);
    expect(summary).toContain("2 setup steps");
    const lines = workspaceFileLines({ setup: ["echo hi\nrm -rf ~"], env: { A: "1" } });
    expect(lines.join("\n")).toContain("1. echo hi\\nrm -rf ~");
  });
});

describe("what even a trusted .sandbox.yml cannot set", () => {
  test("network: only none or bridge; host and named networks are ignored with a note", () => {
    for (const network of ["host", "corp-net"]) {
      const settings = effectiveSettings(load({ [FILE]: `network: ${network}\n` }, trusted));
      expect(settings.network.value).toBe("bridge");
      expect(settings.network.source).toBe("default");
      expect(settings.network.note).toContain(`ignored network "${network}" from ${FILE}`);
      expect(settings.network.note).toContain(`--network ${network}`);
    }
    expect(effectiveSettings(load({ [FILE]: "network: none\n" }, trusted)).network).toEqual({ value: "none", source: FILE });
    // The user's own config may name one, and the repository may then repeat it.
    const named = effectiveSettings(load({ [USER]: "container:\n  network: corp-net\n", [FILE]: "network: corp-net\n" }, trusted));
    expect(named.network).toEqual({ value: "corp-net", source: FILE });
    // A flag still allows what the repository asked for.
    const flagged = withFlags(SETTINGS, effectiveSettings(load({ [FILE]: "network: host\n" }, trusted)), { network: "host" });
    expect(flagged.network).toEqual({ value: "host", source: "flag --network" });
  });

  test("timeout: the shorter of the user's and the repository's wins", () => {
    const shorter = effectiveSettings(load({ [USER]: "container:\n  timeout: 1h\n", [FILE]: "timeout: 10m\n" }, trusted));
    expect(shorter.timeoutMs).toEqual({ value: 600_000, source: FILE });
    const longer = effectiveSettings(load({ [USER]: "container:\n  timeout: 10m\n", [FILE]: "timeout: 5h\n" }, trusted));
    expect(longer.timeoutMs.value).toBe(600_000);
    expect(longer.timeoutMs.source).toBe(USER);
    expect(longer.timeoutMs.note).toContain("ignored timeout 5h");
    expect(longer.timeoutMs.note).toContain("--timeout 5h");
    // Against the built-in default (30m) too.
    const overDefault = effectiveSettings(load({ [FILE]: "timeout: 2h\n" }, trusted));
    expect(overDefault.timeoutMs).toMatchObject({ value: 30 * 60_000, source: "default" });
    expect(settingNotes(overDefault)).toHaveLength(1);
    // The flag is the user's word.
    expect(withFlags(SETTINGS, longer, { timeoutMs: 5 * 3_600_000 }).timeoutMs).toEqual({ value: 5 * 3_600_000, source: "flag --timeout" });
  });
});

describe("timeouts longer than a timer can wait are refused everywhere", () => {
  test("in the user's config and in .sandbox.yml", () => {
    for (const [files, file] of [
      [{ [USER]: "container:\n  timeout: 600h\n" }, USER],
      [{ [FILE]: "timeout: 600h\n" }, FILE],
      [{ [FILE]: "timeout: 2147484\n" }, FILE],
    ] as const) {
      let error: unknown;
      try {
        effectiveSettings(load(files, trusted));
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).message).toContain(file);
      expect((error as ConfigError).message).toContain("at most 596h");
    }
    // Up to the limit is fine: 596h is 2,145,600,000 ms < 2^31-1.
    expect(effectiveSettings(load({ [USER]: "container:\n  timeout: 596h\n" }, trusted)).timeoutMs.value).toBe(596 * 3_600_000);
  });

  test("on the command line", () => {
    for (const text of ["600h", "597h", "2147484"]) {
      expect(() => parseRunArgs(["--timeout", text, "true"])).toThrow(UsageError);
      expect(() => parseRunArgs(["--timeout", text, "true"])).toThrow(/longer than 596h/);
    }
    expect(parseRunArgs(["--timeout", "596h", "true"]).timeoutMs).toBe(596 * 3_600_000);
  });
});

/**
 * One declaration per setting: a setting added to the table (here a throw-away
 * `shoeSize`, in a copy of the real table) reaches flag parsing, help,
 * completion, the config schema, resolution, `config show` and the plan's
 * input with no other code; and every entry of the real table is in each.
 */
import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { buildSpec, bashScript, fishScript, zshScript } from "../../src/cli/completion/generate.ts";
import { COMMAND_NAMES } from "../../src/cli/commands/names.ts";
import { MAIN_HELP } from "../../src/cli/help.ts";
import { flagHelp, RUN_HELP } from "../../src/cli/run-help.ts";
import { optionSpec, parseFlagValues, parseRunArgs, RUN_OPTIONS } from "../../src/cli/run-options.ts";
import { setting, type DeclarationTable } from "../../src/config/declare.ts";
import { settingRows } from "../../src/config/report.ts";
import { mergeLayers, withFlags } from "../../src/config/resolve.ts";
import { runSettings } from "../../src/config/run-settings.ts";
import { globalConfigSchema, workspaceFileSchema } from "../../src/config/schema.ts";
import { SETTINGS, type EffectiveSettings } from "../../src/config/settings.ts";
import { detectAgent } from "../../src/core/agents.ts";
import { UsageError } from "../../src/core/errors.ts";

const shoeSize = setting<number>({
  default: 42,
  config: {
    key: "security.shoe_size",
    schema: v.custom<number>((x) => typeof x === "number" && Number.isInteger(x) && x > 0, "expected a shoe size such as 42"),
  },
  workspace: { key: "shoes", schema: v.custom<string>((x) => typeof x === "string", "expected a size"), transform: (written: string) => Number(written) },
  flag: {
    long: "shoe-size",
    arg: "N",
    group: "Workspace",
    help: "The size of the shoes the command wears",
    complete: { words: ["41", "42", "43"] },
    parse: (texts) => {
      const n = Number(texts[texts.length - 1]);
      if (!(n > 0)) throw new Error(`--shoe-size "${texts[texts.length - 1]}" is not a shoe size.`);
      return n;
    },
  },
});
const table = { ...SETTINGS, shoeSize } satisfies DeclarationTable;

describe("a setting added by one declaration", () => {
  test("reaches flag parsing, with its own check", () => {
    expect(optionSpec(table)["shoe-size"]).toEqual({ type: "string" });
    expect(parseFlagValues(table, ["--shoe-size", "44", "--memory", "1g"], "run")).toEqual({ shoeSize: 44, memoryBytes: 1024 ** 3 });
    expect(() => parseFlagValues(table, ["--shoe-size", "big"], "run")).toThrow(UsageError);
    expect(() => parseFlagValues(table, ["--shoe-size", "big"], "run")).toThrow('sandbox run: --shoe-size "big" is not a shoe size.');
  });

  test("reaches --help, in its group", () => {
    const help = flagHelp(table);
    const workspace = help.slice(help.indexOf("Workspace:"), help.indexOf("Security and limits"));
    expect(workspace).toContain("      --shoe-size N          The size of the shoes the command wears\n");
  });

  test("reaches completion in every shell, with its values", () => {
    const spec = buildSpec(COMMAND_NAMES, MAIN_HELP, table);
    expect(spec.runFlags.find((f) => f.long === "shoe-size")).toEqual({
      long: "shoe-size",
      takesValue: true,
      repeatable: false,
      description: "The size of the shoes the command wears",
      value: { words: ["41", "42", "43"] },
    });
    expect(bashScript(spec)).toContain("--shoe-size) COMPREPLY=($(compgen -W \"41 42 43\"");
    expect(zshScript(spec)).toContain("--shoe-size");
    expect(fishScript(spec)).toContain("-l shoe-size");
  });

  test("reaches both config files' schemas, in its section and only where declared", () => {
    expect(v.safeParse(globalConfigSchema(table), { security: { shoe_size: 45 } }).success).toBe(true);
    expect(v.safeParse(globalConfigSchema(table), { security: { shoe_size: "x" } }).issues?.[0]?.message).toBe("expected a shoe size such as 42");
    expect(v.safeParse(globalConfigSchema(SETTINGS), { security: { shoe_size: 45 } }).success).toBe(false);
    expect(v.safeParse(workspaceFileSchema(table), { shoes: "44" }).success).toBe(true);
  });

  test("is resolved with its source, in precedence order, and shown by config show", () => {
    const global = { config: { security: { shoe_size: 45 } }, sources: { "security.shoe_size": "/home/me/.config/sandbox/config.yaml" } };
    const fromConfig = mergeLayers(table, global);
    expect(fromConfig.shoeSize).toEqual({ value: 45, source: "/home/me/.config/sandbox/config.yaml" });
    expect(mergeLayers(table, { config: {}, sources: {} }).shoeSize).toEqual({ value: 42, source: "default" });
    expect(mergeLayers(table, global, { file: { shoes: "46" }, path: "/w/.sandbox.yml" }).shoeSize).toEqual({ value: 46, source: "/w/.sandbox.yml" });
    const flagged = withFlags(table, fromConfig, parseFlagValues(table, ["--shoe-size", "44"], "run"));
    expect(flagged.shoeSize).toEqual({ value: 44, source: "flag --shoe-size" });
    expect(settingRows(table, flagged)).toContainEqual({ key: "security.shoe_size", value: "44", source: "flag --shoe-size" });
  });

  test("reaches the plan's input", () => {
    const resolved = withFlags(table, mergeLayers(table, { config: {}, sources: {} }), { shoeSize: 47 });
    const seccomp = { kind: "unconfined" } as const;
    const { settings } = runSettings({ command: ["sh"], settings: resolved as unknown as EffectiveSettings, agent: detectAgent(["sh"]), seccomp, env: {} });
    expect((settings as unknown as { shoeSize: number }).shoeSize).toBe(47);
  });
});

describe("the real table feeds every consumer", () => {
  const flags = Object.values(SETTINGS as DeclarationTable).flatMap((d) => (d.flag ? [d.flag] : []));

  test("every declared flag is parsed, documented in --help and completed", () => {
    const spec = buildSpec(COMMAND_NAMES, MAIN_HELP, SETTINGS);
    for (const flag of flags) {
      expect(RUN_OPTIONS).toHaveProperty(flag.long);
      expect(RUN_HELP).toContain(`--${flag.long}`);
      expect(spec.runFlags.some((f) => f.long === flag.long)).toBe(true);
    }
    // Nothing parses that is not declared.
    const declared = new Set(flags.flatMap((f) => [f.long, ...(f.negatable ? [`no-${f.long}`] : [])]));
    expect(Object.keys(RUN_OPTIONS).filter((name) => !declared.has(name))).toEqual([]);
  });

  test("every config key is shown by config show", () => {
    const keys = settingRows(SETTINGS, mergeLayers(SETTINGS, { config: {}, sources: {} })).map((r) => r.key);
    for (const d of Object.values(SETTINGS as DeclarationTable)) {
      if (d.config) expect(keys).toContain(d.config.key);
      if (d.workspace && !d.config) expect(keys).toContain(`.sandbox.yml: ${d.workspace.key}`);
    }
    expect(keys).toContain("images");
    expect(keys).toContain("agents");
  });

  test("config show says what is in effect where nothing is set: no bare '-'", () => {
    const defaults = mergeLayers(SETTINGS, { config: {}, sources: {} });
    const rows = settingRows(SETTINGS, defaults, { uid: 1234, gid: 99, env: { XDG_CACHE_HOME: "/c" }, homeDir: "/home/u" });
    expect(rows.filter((r) => r.value === "-").map((r) => r.key)).toEqual([]);
    const value = (key: string) => rows.find((r) => r.key === key)?.value;
    expect(value("security.user")).toBe("1234:99 (your uid:gid)");
    expect(value("security.cpus")).toBe("no limit");
    expect(value("build.base")).toBe("node:22-bookworm-slim");
    expect(value("paths.cache")).toBe("/c/sandbox, with --cache");
    // Without ids (Windows), the default the plan uses (core/plan.ts defaultUser).
    expect(settingRows(SETTINGS, defaults).find((r) => r.key === "security.user")?.value).toBe("1000:1000");
    // A value that is set is shown as set.
    const set = mergeLayers(SETTINGS, { config: { security: { user: "0:0", cpus: 2 } }, sources: { "security.user": "/x.yaml", "security.cpus": "/x.yaml" } });
    const setRows = settingRows(SETTINGS, set, { uid: 1234, gid: 99, env: {}, homeDir: "/home/u" });
    expect(setRows.find((r) => r.key === "security.user")).toEqual({ key: "security.user", value: "0:0", source: "/x.yaml" });
    expect(setRows.find((r) => r.key === "security.cpus")?.value).toBe("2");
  });

  test("a flag's value wins over the config, a repeatable one that appends adds to it", () => {
    const base = mergeLayers(SETTINGS, { config: { security: { pids: 64, cap_add: ["CAP_NET_ADMIN"] } }, sources: {} });
    const args = parseRunArgs(["--pids-limit", "9", "--cap-add", "SYS_PTRACE", "sh"]);
    const resolved = withFlags(SETTINGS, base, args);
    expect(resolved.pids.value).toBe(9);
    expect(resolved.capAdd.value).toEqual(["NET_ADMIN", "SYS_PTRACE"]);
  });
});

/**
 * The credential rules as `sandbox doctor` and `sandbox config show` list
 * them (core/credential-status.ts, cli/credential-status.ts): hosts, header,
 * where the value is on this host, never the value; a command source is
 * looked up on PATH and never run. Made-up environments and files in a temp
 * folder; no engine.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentialStatuses } from "../../src/cli/credential-status.ts";
import { credentialRuleStatuses, formatShown, ruleStatusLine, ruleValue } from "../../src/core/credential-status.ts";
import type { CredentialRule } from "../../src/core/credentials.ts";

const dir = mkdtempSync(join(tmpdir(), "sandbox-credential-status-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const SECRET = "sk-status-secret-0123456789";
const byName = <T extends { rule: string }>(list: readonly T[], name: string) => list.find((s) => s.rule === name) as T;

describe("ruleValue", () => {
  test("the first source with a value; a command may give one (not run); none with every reason", () => {
    expect(ruleValue([{ source: { env: "A" }, check: { kind: "missing", why: "$A is not set" } }, { source: { env: "B" }, check: { kind: "value" } }])).toEqual({
      value: "available",
      from: "$B",
      detail: "from $B",
    });
    expect(ruleValue([{ source: { env: "A" }, check: { kind: "missing", why: "$A is not set" } }, { source: { command: ["gh", "auth", "token"] }, check: { kind: "command" } }])).toEqual({
      value: "command",
      from: "`gh auth token`",
      detail: "from `gh auth token` if it prints a value (a command: not run here, only by a run that needs it; $A is not set)",
    });
    expect(ruleValue([{ source: { file: "~/t" }, check: { kind: "missing", why: "file ~/t does not exist" } }])).toEqual({ value: "none", from: null, detail: "no value on this host (file ~/t does not exist)" });
    expect(ruleValue([{ source: { file: "~/t" }, check: { kind: "unusable", why: "cannot read the credential file ~/t: EACCES" } }]).value).toBe("unusable");
  });

  test("formats as the header's value, the credential as {value}", () => {
    expect(formatShown({ kind: "template", template: "Bearer {value}" })).toBe("Bearer {value}");
    expect(formatShown({ kind: "basic", username: "x-access-token" })).toBe("Basic base64(x-access-token:{value})");
  });
});

describe("credentialStatuses (on this host)", () => {
  const tokenFile = join(dir, "token");
  writeFileSync(tokenFile, `${SECRET}\n`);
  const marker = join(dir, "ran");
  const bin = join(dir, "bin");
  const custom: CredentialRule[] = [
    { name: "corp-api", hosts: ["api.corp.example"], header: "authorization", format: { kind: "template", template: "Bearer {value}" }, sources: [{ env: "CORP_TOKEN" }, { file: tokenFile }], placeholders: ["CORP_TOKEN"] },
    // A helper that leaves a trace if it is ever run.
    { name: "vault", hosts: ["vault.corp.example"], header: "x-vault-token", format: { kind: "template", template: "{value}" }, sources: [{ command: [join(bin, "helper")] }], placeholders: [] },
    { name: "github-api", hosts: ["api.github.com"], header: "authorization", format: { kind: "template", template: "token {value}" }, sources: [{ command: ["no-such-helper-xyz"] }], placeholders: [] },
  ];

  test("yours first, then the built-ins; values found, commands looked up but not run, shadowed rules marked", async () => {
    rmSync(bin, { recursive: true, force: true });
    mkdirSync(bin);
    writeFileSync(join(bin, "helper"), `#!/bin/sh\ntouch '${marker}'\necho ${SECRET}\n`);
    chmodSync(join(bin, "helper"), 0o755);
    const statuses = await credentialStatuses(custom, "/home/u/.config/sandbox/config.yaml", {
      env: { PATH: "/usr/bin:/bin", ANTHROPIC_API_KEY: SECRET, CLAUDE_CODE_OAUTH_TOKEN: SECRET },
      homeDir: dir,
      cwd: dir,
    });
    expect(statuses.map((s) => s.rule)).toEqual(["corp-api", "vault", "github-api", "anthropic-api-key", "claude-oauth-token", "openai-api-key", "gemini-api-key", "openrouter-api-key", "github-git"]);
    expect(byName(statuses, "corp-api")).toMatchObject({ origin: "/home/u/.config/sandbox/config.yaml", replacesBuiltIn: false, value: "available", from: `file ${tokenFile}`, sources: ["$CORP_TOKEN", `file ${tokenFile}`] });
    expect(byName(statuses, "vault")).toMatchObject({ value: "command", from: `\`${join(bin, "helper")}\`` });
    expect(existsSync(marker)).toBe(false);
    expect(byName(statuses, "github-api")).toMatchObject({ replacesBuiltIn: true, value: "none", detail: "no value on this host (no-such-helper-xyz is not on PATH)" });
    expect(byName(statuses, "anthropic-api-key")).toMatchObject({ origin: "built-in", value: "available", from: "$ANTHROPIC_API_KEY", shadowedBy: null });
    expect(byName(statuses, "claude-oauth-token")).toMatchObject({ value: "available", shadowedBy: "anthropic-api-key" });
    expect(byName(statuses, "claude-oauth-token").detail).toBe("from $CLAUDE_CODE_OAUTH_TOKEN; not used: rule anthropic-api-key adds a credential for api.anthropic.com");
    expect(byName(statuses, "openai-api-key")).toMatchObject({ value: "none", detail: "no value on this host ($OPENAI_API_KEY is not set)" });
    expect(byName(statuses, "github-git")).toMatchObject({ value: "none", detail: "no value on this host ($GH_TOKEN is not set, $GITHUB_TOKEN is not set, gh is not on PATH)" });
    expect(ruleStatusLine(byName(statuses, "github-api"))).toBe("api.github.com: authorization: token {value}, no value on this host (no-such-helper-xyz is not on PATH) (replaces the built-in rule)");
    expect(JSON.stringify(statuses)).not.toContain(SECRET);
  });

  test("a file a run could not use is said so, without its content", async () => {
    const bad = join(dir, "two-lines");
    writeFileSync(bad, `${SECRET}\nsecond ${SECRET}\n`);
    const rule: CredentialRule = { name: "bad", hosts: ["a.example"], header: "x-k", format: { kind: "template", template: "{value}" }, sources: [{ file: bad }], placeholders: [] };
    const [status] = await credentialStatuses([rule], "config.yaml", { env: {}, homeDir: dir, cwd: dir });
    expect(status).toMatchObject({ rule: "bad", value: "unusable" });
    expect(status?.detail).toContain("cannot be sent in a header");
    expect(JSON.stringify(status)).not.toContain(SECRET);
  });

  test("one claim per host, in order, as a run makes it", () => {
    const a: CredentialRule = { name: "a", hosts: ["h.example"], header: "x", format: { kind: "template", template: "{value}" }, sources: [{ env: "A" }], placeholders: [] };
    const b: CredentialRule = { ...a, name: "b", sources: [{ env: "B" }] };
    const statuses = credentialRuleStatuses(
      [a, b],
      new Map([
        [a, [{ kind: "missing", why: "$A is not set" }]],
        [b, [{ kind: "value" }]],
      ]),
      { userRules: new Set(["a", "b"]), builtIns: new Set(), userSource: "c.yaml" },
    );
    expect(statuses.map((s) => s.shadowedBy)).toEqual([null, null]);
  });
});

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { BUILTIN_CREDENTIALS } from "../../src/core/builtin-credentials.ts";
import { CredentialError, PLACEHOLDER, type CredentialRule } from "../../src/core/credentials.ts";
import { readSource, resolveCredentials, type SourceContext } from "../../src/egress/credential-source.ts";

let dir: string;
let ctx: SourceContext;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "sandbox-cred-src-"));
  mkdirSync(join(dir, "home"));
  ctx = { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", TOKEN_A: "tok-a", EMPTY: "" }, homeDir: join(dir, "home"), cwd: dir };
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const valueOf = async (r: Promise<Awaited<ReturnType<typeof readSource>>>) => {
  const got = await r;
  return "value" in got ? got.value.reveal() : got;
};

describe("sources", () => {
  test("environment: set is a value, unset or empty is missing", async () => {
    expect(await valueOf(readSource({ env: "TOKEN_A" }, ctx))).toBe("tok-a");
    expect(await valueOf(readSource({ env: "NOPE" }, ctx))).toEqual({ missing: "$NOPE is not set" });
    expect(await valueOf(readSource({ env: "EMPTY" }, ctx))).toEqual({ missing: "$EMPTY is not set" });
  });

  test("a placeholder is no credential (a sandbox run inside a run)", async () => {
    expect(await valueOf(readSource({ env: "P" }, { ...ctx, env: { P: PLACEHOLDER } }))).toHaveProperty("missing");
  });

  test("file: trimmed, ~ is the home folder, relative to cwd; absent is missing; unreadable is an error", async () => {
    writeFileSync(join(dir, "home", "token"), "  tok-file\n");
    writeFileSync(join(dir, "rel"), "tok-rel");
    expect(await valueOf(readSource({ file: "~/token" }, ctx))).toBe("tok-file");
    expect(await valueOf(readSource({ file: "rel" }, ctx))).toBe("tok-rel");
    expect(await valueOf(readSource({ file: "~/absent" }, ctx))).toEqual({ missing: "file ~/absent does not exist" });
    await expect(readSource({ file: "." }, ctx)).rejects.toBeInstanceOf(CredentialError);
  });

  test("command: its output, trimmed; its failure is missing, its error output unread", async () => {
    expect(await valueOf(readSource({ command: ["sh", "-c", "printf 'tok-cmd\\n'"] }, ctx))).toBe("tok-cmd");
    expect(await valueOf(readSource({ command: ["pwd"] }, ctx))).toBe(dir);
    const failed = await readSource({ command: ["sh", "-c", "echo leaked-secret >&2; echo leaked-secret; exit 3"] }, ctx);
    expect(failed).toEqual({ missing: "`sh -c echo leaked-secret >&2; echo leaked-secret; exit 3` exited with status 3" });
    expect(await readSource({ command: ["definitely-not-a-program-xyz"] }, ctx)).toEqual({ missing: "`definitely-not-a-program-xyz` was not found" });
    const slow = await readSource({ command: ["sleep", "5"] }, { ...ctx, commandTimeoutMs: 200 });
    expect(slow).toHaveProperty("missing");
    expect((slow as { missing: string }).missing).toContain("was stopped");
    // Standard input is closed: a command that reads it does not hang.
    expect(await valueOf(readSource({ command: ["sh", "-c", "cat; echo tok-after-eof"] }, ctx))).toBe("tok-after-eof");
  });

  test("a value that cannot go into a header is an error that does not show it", async () => {
    const script = join(dir, "multi.sh");
    writeFileSync(script, "#!/bin/sh\nprintf 'line-one-secret\\nX-Evil: 1\\n'\n");
    chmodSync(script, 0o755);
    let error: unknown;
    try {
      await readSource({ command: [script] }, ctx);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(CredentialError);
    const e = error as CredentialError;
    expect(e.exitCode).toBe(125);
    expect(e.hint).toBeDefined();
    expect(`${e.message}${e.hint}${inspect(e)}`).not.toContain("line-one-secret");
  });
});

describe("resolving rules", () => {
  test("sources in order, a shared command run once, shadowed rules never read", async () => {
    const counter = join(dir, "count");
    // The value is assembled by the command, so the command line itself does not contain it.
    const cmd = ["sh", "-c", `echo x >> '${counter}'; printf 'tok-%s' gh`];
    const github = (name: string, hosts: string[]): CredentialRule => ({ name, hosts, header: "authorization", format: { kind: "template", template: "Bearer {value}" }, sources: [{ env: "GH_TOKEN" }, { command: cmd }], placeholders: ["GH_TOKEN"] });
    const shadowedCmd = ["sh", "-c", `echo shadowed >> '${counter}'; echo never`];
    const rules: CredentialRule[] = [
      github("gh-api", ["api.github.com"]),
      github("gh-git", ["github.com"]),
      { ...github("gh-again", ["github.com"]), sources: [{ command: shadowedCmd }] },
      { ...github("absent", ["x.example.com"]), sources: [{ env: "NOPE" }, { file: "~/nope" }] },
    ];
    const r = await resolveCredentials(rules, ctx);
    expect(r.used.map((c) => [c.rule.name, c.value.reveal(), c.from])).toEqual([
      ["gh-api", "tok-gh", `\`${cmd.join(" ")}\``],
      ["gh-git", "tok-gh", `\`${cmd.join(" ")}\``],
    ]);
    expect(r.shadowed.map((x) => x.name)).toEqual(["gh-again"]);
    expect(r.missing).toEqual([{ rule: rules[3]!, reasons: ["$NOPE is not set", "file ~/nope does not exist"] }]);
    expect((await Bun.file(counter).text()).trim()).toBe("x");
    expect(JSON.stringify(r)).not.toContain("tok-gh");
  });

  test("the built-ins pick the host's variables", async () => {
    const env = { ANTHROPIC_API_KEY: "sk-ant-1", CLAUDE_CODE_OAUTH_TOKEN: "oat-1", GOOGLE_API_KEY: "g-1", PATH: "/nonexistent" };
    const r = await resolveCredentials(BUILTIN_CREDENTIALS, { ...ctx, env });
    expect(r.used.map((c) => `${c.rule.name}=${c.from}`)).toEqual(["anthropic-api-key=$ANTHROPIC_API_KEY", "gemini-api-key=$GOOGLE_API_KEY"]);
    expect(r.shadowed.map((x) => x.name)).toEqual(["claude-oauth-token"]);
    // gh is not on that PATH: GitHub's rules are missing, with every reason.
    expect(r.missing.find((m) => m.rule.name === "github-api")?.reasons).toEqual(["$GH_TOKEN is not set", "$GITHUB_TOKEN is not set", "`gh auth token` was not found"]);
  });
});

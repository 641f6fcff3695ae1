/** What each agent profile passes to run well inside: state env, args, seeds (facts from running the real CLIs, test/fixtures/agent-apis/agents.ts). */
import { describe, expect, test } from "bun:test";
import { agentCommand, detectAgent } from "../../src/core/agents.ts";
import { planPersistence } from "../../src/core/persistence.ts";

const persist = (agent: string, forwarded: string[] = []) =>
  planPersistence({ cache: undefined, stateRoot: "/s", agent: detectAgent([agent]), persistState: true, workspace: "/w/repo", workspaceKey: "repo-0123456789ab", forwarded });

describe("agent profiles", () => {
  test("Claude Code keeps ~/.claude.json inside its per-workspace state folder", () => {
    const p = persist("claude");
    expect(p.mounts).toEqual([{ Type: "bind", Source: "/s/agents/claude/repo-0123456789ab", Target: "/home/sandbox/.claude", ReadOnly: false }]);
    expect(p.env).toEqual({ CLAUDE_CONFIG_DIR: "/home/sandbox/.claude" });
    expect(p.hostFiles).toEqual([{ path: "/s/agents/claude/repo-0123456789ab.workspace", text: "/w/repo\n" }]);
  });

  test("Codex is told the container is its sandbox, after its own command word only", () => {
    const codex = detectAgent(["codex"]);
    expect(agentCommand(codex, ["codex", "exec", "hi"])).toEqual(["codex", "-c", 'sandbox_mode="danger-full-access"', "exec", "hi"]);
    expect(agentCommand(codex, ["/usr/local/bin/codex", "--version"])).toEqual(["/usr/local/bin/codex", "-c", 'sandbox_mode="danger-full-access"', "--version"]);
    // --agent codex with another command: nothing is inserted into it.
    expect(agentCommand(codex, ["sh", "-c", "codex exec hi"])).toEqual(["sh", "-c", "codex exec hi"]);
    expect(persist("codex").env).toEqual({ CODEX_HOME: "/home/sandbox/.codex" });
  });

  test("Gemini CLI gets API-key auth seeded only when a key is forwarded, and never over an existing file", () => {
    expect(persist("gemini").hostFiles.filter((f) => f.ifAbsent)).toEqual([]);
    const seeded = persist("gemini", ["GEMINI_API_KEY"]).hostFiles.filter((f) => f.ifAbsent);
    expect(seeded.map((f) => f.path)).toEqual(["/s/agents/gemini/repo-0123456789ab/settings.json"]);
    expect(JSON.parse(seeded[0]?.text ?? "{}").security.auth.selectedType).toBe("gemini-api-key");
  });

  test("no state, no seeds", () => {
    const p = planPersistence({ cache: undefined, stateRoot: "/s", agent: detectAgent(["gemini"]), persistState: false, workspace: "/w", workspaceKey: "w-1", forwarded: ["GEMINI_API_KEY"] });
    expect(p).toEqual({ mounts: [], env: {}, hostFiles: [], hostDirs: [] });
  });
});

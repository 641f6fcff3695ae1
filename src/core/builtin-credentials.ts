import type { CredentialRule, CredentialSource } from "./credentials.ts";

/**
 * The credential rules sandbox knows without configuration, in priority
 * order (the first with a value claims its hosts: core/credentials.ts,
 * selectRules). Each names what the agent or tool really sends:
 *
 *  - Claude Code: an API key in `x-api-key`; a subscription token
 *    (`claude setup-token`, CLAUDE_CODE_OAUTH_TOKEN) as `Authorization:
 *    Bearer`. The key comes first, as Claude Code itself prefers it.
 *  - OpenAI (codex, the SDKs) and OpenRouter: `Authorization: Bearer`.
 *  - Gemini: the gemini CLI (through @google/genai) sends the key in
 *    `x-goog-api-key`, never as a `?key=` query parameter, so only the
 *    header is set (a key in a URL would also end up in server logs and
 *    error messages that echo the URL back into the container).
 *  - GitHub: gh sends `Authorization: token …`; the API takes Bearer for the
 *    same tokens. git over https authenticates with Basic, user
 *    `x-access-token`, password the token, which GitHub accepts for personal
 *    and app tokens alike; with it set on every request git never needs a
 *    credential helper inside.
 */

const GITHUB_SOURCES: readonly CredentialSource[] = [{ env: "GH_TOKEN" }, { env: "GITHUB_TOKEN" }, { command: ["gh", "auth", "token"] }];

export const BUILTIN_CREDENTIALS: readonly CredentialRule[] = [
  {
    name: "anthropic-api-key",
    hosts: ["api.anthropic.com"],
    header: "x-api-key",
    format: { kind: "template", template: "{value}" },
    sources: [{ env: "ANTHROPIC_API_KEY" }],
    placeholders: ["ANTHROPIC_API_KEY"],
  },
  {
    name: "claude-oauth-token",
    hosts: ["api.anthropic.com"],
    header: "authorization",
    format: { kind: "template", template: "Bearer {value}" },
    sources: [{ env: "CLAUDE_CODE_OAUTH_TOKEN" }],
    placeholders: ["CLAUDE_CODE_OAUTH_TOKEN"],
  },
  {
    name: "openai-api-key",
    hosts: ["api.openai.com"],
    header: "authorization",
    format: { kind: "template", template: "Bearer {value}" },
    sources: [{ env: "OPENAI_API_KEY" }],
    placeholders: ["OPENAI_API_KEY"],
  },
  {
    name: "gemini-api-key",
    hosts: ["generativelanguage.googleapis.com"],
    header: "x-goog-api-key",
    format: { kind: "template", template: "{value}" },
    sources: [{ env: "GEMINI_API_KEY" }, { env: "GOOGLE_API_KEY" }],
    placeholders: ["GEMINI_API_KEY"],
  },
  {
    name: "openrouter-api-key",
    hosts: ["openrouter.ai"],
    header: "authorization",
    format: { kind: "template", template: "Bearer {value}" },
    sources: [{ env: "OPENROUTER_API_KEY" }],
    placeholders: ["OPENROUTER_API_KEY"],
  },
  {
    name: "github-api",
    hosts: ["api.github.com"],
    header: "authorization",
    format: { kind: "template", template: "Bearer {value}" },
    sources: GITHUB_SOURCES,
    placeholders: ["GH_TOKEN", "GITHUB_TOKEN"],
  },
  {
    name: "github-git",
    hosts: ["github.com"],
    header: "authorization",
    format: { kind: "basic", username: "x-access-token" },
    sources: GITHUB_SOURCES,
    placeholders: [],
  },
];

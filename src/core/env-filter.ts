import picomatch from "picomatch";

/**
 * Host environment → container environment. Nothing passes unless a name is
 * on the allow-list, and the block-list always wins over the allow-list, so
 * a broad allow glob can never leak a token. Explicit `--env NAME` is the
 * only way through the block-list, and the caller reports it.
 */
export const DEFAULT_ENV_ALLOW: readonly string[] = ["LANG", "LANGUAGE", "LC_*", "TERM", "COLORTERM", "TZ", "NO_COLOR"];

export const DEFAULT_ENV_BLOCK: readonly string[] = [
  "AWS_*",
  "AZURE_*",
  "GOOGLE_APPLICATION_CREDENTIALS",
  "GITHUB_TOKEN",
  "GH_TOKEN",
  "GITLAB_TOKEN",
  "NPM_TOKEN",
  "SSH_AUTH_SOCK",
  "DOCKER_*",
  "*_API_KEY",
  "*_APIKEY",
  "*_KEY",
  "*_SECRET",
  "*_SECRET_*",
  "*SECRET*",
  "*_TOKEN",
  "*_TOKEN_*",
  "*PASSWORD*",
  "*PASSWD*",
  "*CREDENTIAL*",
  "*_AUTH",
];

export interface EnvFilterLists {
  allow: readonly string[];
  block: readonly string[];
}

export type EnvMatcher = (name: string) => boolean;

export function globMatcher(globs: readonly string[]): EnvMatcher {
  if (globs.length === 0) return () => false;
  // Env names are not paths; `dot` lets `*` match names starting with `.`
  // and nocase is off because env names are case-sensitive on Linux.
  return picomatch([...globs], { dot: true });
}

export interface EnvDecision {
  /** Variables that pass the filter, by name. */
  forwarded: Record<string, string>;
  /** Names that were present but blocked (for `--dry-run` and `config show`). */
  blocked: string[];
}

export function filterHostEnv(env: Record<string, string | undefined>, lists: EnvFilterLists): EnvDecision {
  const allowed = globMatcher(lists.allow);
  const blocked = globMatcher(lists.block);
  const decision: EnvDecision = { forwarded: {}, blocked: [] };
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || !allowed(name)) continue;
    if (blocked(name)) decision.blocked.push(name);
    else decision.forwarded[name] = value;
  }
  decision.blocked.sort();
  return decision;
}

/** `--env` forms: `KEY=VALUE` sets a value, `KEY` forwards the host's. */
export type EnvFlag = { name: string; value: string; fromHost: false } | { name: string; fromHost: true };

export function parseEnvFlag(text: string): EnvFlag | { error: string } {
  const eq = text.indexOf("=");
  const name = eq < 0 ? text : text.slice(0, eq);
  if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(name)) {
    return { error: `--env "${text}": "${name}" is not a valid variable name (use KEY=VALUE or KEY)` };
  }
  return eq < 0 ? { name, fromHost: true } : { name, value: text.slice(eq + 1), fromHost: false };
}

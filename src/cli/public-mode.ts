import type { AgentProfile } from "../core/agents.ts";
import { BUILTIN_CREDENTIALS } from "../core/builtin-credentials.ts";
import { ruleVariables, type CredentialRule } from "../core/credentials.ts";
import { engineFlavor } from "../core/engine-dialect.ts";
import { EXIT } from "../core/exit-codes.ts";
import { SandboxError } from "../core/errors.ts";
import { securityOptionNames } from "../core/preflight.ts";
import type { Setting } from "../config/settings.ts";
import type { Connected } from "../engine/connect.ts";
import { readEngineInfo } from "../engine/info.ts";

/**
 * The edges of public mode, the network agents get by default (docs/egress.md,
 * "Public mode"): what happens where its proxy cannot run, and what an agent
 * run on another network is told about the keys the proxy would have added.
 *
 * A default must never make a run fail: where the engine cannot host the
 * proxy (Podman, a remote or rootless engine, macOS), an agent run whose
 * network nobody chose falls back to bridge, with a warning that says what
 * that gives away. `--network public` and `--egress`, chosen on purpose,
 * are refused there instead (exit 125).
 */

/** Why the egress proxy cannot run with this engine (egress/gateway.ts egressEngineProblem), from its ping and /info. */
export async function connectedEgressProblem(connected: Pick<Connected, "engine" | "ping" | "info">, platform: string): Promise<string | undefined> {
  const { engine, ping } = connected;
  const info = await (connected.info ?? readEngineInfo(engine)).catch(() => undefined);
  const { egressEngineProblem } = await import("../egress/gateway.ts");
  return egressEngineProblem(engine.address, platform, ping.osType, {
    flavor: engineFlavor(engine.server),
    rootless: securityOptionNames(info?.SecurityOptions).includes("rootless"),
  });
}

/** An agent's key that is on this host and that no run option passes in: what public mode's proxy would add. Names only. */
export interface UnprovidedKey {
  rule: CredentialRule;
  /** The variables set on the host, e.g. `ANTHROPIC_API_KEY`. */
  names: string[];
}

/**
 * The agent's own credential rules (those whose variables it authenticates
 * with, AgentProfile.authEnv) that have a value in sandbox's environment,
 * where none of their variables is passed in on purpose; one rule per host,
 * as the proxy would use them. Reads variables only: no file, no command.
 */
export function agentKeysOnHost(
  agent: Pick<AgentProfile, "authEnv">,
  env: Readonly<Record<string, string | undefined>>,
  explicit: ReadonlySet<string>,
  rules: readonly CredentialRule[] = BUILTIN_CREDENTIALS,
): UnprovidedKey[] {
  const own = new Set(agent.authEnv);
  const claimed = new Set<string>();
  const out: UnprovidedKey[] = [];
  for (const rule of rules) {
    const variables = ruleVariables(rule);
    if (!variables.some((name) => own.has(name)) || rule.hosts.some((h) => claimed.has(h))) continue;
    // Passed in raw: the container has the value, as asked, and that rule's hosts are settled.
    if (variables.some((name) => explicit.has(name))) {
      for (const h of rule.hosts) claimed.add(h);
      continue;
    }
    const names = rule.sources.flatMap((s) => ("env" in s && env[s.env] ? [s.env] : []));
    if (names.length === 0) continue;
    for (const h of rule.hosts) claimed.add(h);
    out.push({ rule, names });
  }
  return out;
}

const listed = (names: readonly string[]) => (names.length <= 1 ? names.join("") : `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`);

/** `ANTHROPIC_API_KEY on this host is not provided ...`: which keys, where the proxy would add them, how to hand them in. */
function keysMissing(keys: readonly UnprovidedKey[]): { text: string; them: string } {
  const names = keys.map((k) => k.names[0] as string);
  const one = names.length === 1;
  const hosts = [...new Set(keys.flatMap((k) => k.rule.hosts))];
  const rules = keys.map((k) => k.rule.name);
  const them = one ? "it" : "them";
  const text =
    `${listed(names)} on this host ${one ? "is" : "are"} not provided to the container (${one ? "neither the key nor a placeholder" : "neither the keys nor placeholders"}); ` +
    `in public mode the egress proxy would add ${them} for ${listed(hosts)} (credential ${one ? "rule" : "rules"} ${rules.join(", ")}). ` +
    `Pass ${names.map((n) => `--env ${n}`).join(" ")} to hand the real ${one ? "value" : "values"} in on purpose`;
  return { text, them };
}

/**
 * The warning of an agent run that falls back to bridge: why, what the
 * command can reach now, and which keys are not provided.
 */
export function publicFallbackWarning(problem: string, keys: readonly UnprovidedKey[]): string {
  const head = `public mode, the default network for agents, cannot be enforced here (${problem}), so this run uses bridge: the command can reach the local network and this host`;
  const tail = '--network bridge or --network none chooses a network on purpose (docs/egress.md, "Public mode")';
  return keys.length === 0 ? `${head}; ${tail}` : `${head}. ${keysMissing(keys).text}; ${tail}`;
}

/** The warning of an agent run put on another network on purpose (`--network bridge`) while its key is on the host. */
export function unprovidedKeysWarning(network: Setting<string>, keys: readonly UnprovidedKey[]): string {
  const byFlag = network.source.startsWith("flag ");
  const what = byFlag ? `--network ${network.value}` : `network ${network.value} (${network.source})`;
  const how = byFlag ? `drop --network ${network.value}` : "pass --network public";
  const missing = keysMissing(keys);
  return `${what}: ${missing.text}, or ${how} to have the proxy add ${missing.them} (docs/credentials.md)`;
}

/** Public mode chosen by default cannot fall back when the run asked for its record: --audit needs the proxy. */
export function auditNeedsProxy(problem: string): SandboxError {
  return new SandboxError(`--audit cannot be honoured here: public mode, the default network for agents, cannot be enforced (${problem}), and the record is its proxy's`, {
    exitCode: EXIT.SANDBOX_FAILED,
    hint: "Drop --audit (the run then falls back to bridge, with a warning), or run where the engine is a local rootful Docker engine on Linux.",
  });
}

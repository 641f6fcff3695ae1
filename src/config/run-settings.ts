import { commandName, type AgentProfile } from "../core/agents.ts";
import type { EnvFlag } from "../core/env-filter.ts";
import { ConfigError, UsageError } from "../core/errors.ts";
import { chooseImage } from "../core/image-choice.ts";
import type { MountSpec } from "../core/engine-api.ts";
import type { EgressSettings, RunSettings, SeccompChoice } from "../core/plan.ts";
import { mergeEgressEntries, parseAllowList } from "../egress/allowlist.ts";
import { parseUpstreamOverrides } from "../egress/upstream-override.ts";
import { settingNotes, settingValues } from "./resolve.ts";
import { DEFAULT_SOURCE, type EffectiveSettings, type Setting } from "./settings.ts";

/**
 * The plan's input from the resolved settings: the values as they are, plus
 * what is derived from several of them (the image, forwarded variables, the
 * egress set-up). Pure.
 */
export interface RunInput {
  command: readonly string[];
  settings: EffectiveSettings;
  agent: AgentProfile;
  /** The profile the `seccomp` setting names, loaded by the caller (file I/O). */
  seccomp: SeccompChoice;
  env: Readonly<Record<string, string | undefined>>;
  /** Package cache and agent state (core/persistence.ts). */
  persistence?: { mounts: MountSpec[]; env: Record<string, string>; stateTarget?: string };
}

export function runSettings(input: RunInput): { settings: RunSettings; notes: string[] } {
  const { settings: eff, agent } = input;
  const values = settingValues(eff);
  const persistence = input.persistence ?? { mounts: [], env: {} };
  const agentConfig = values.agents[agent.name];
  const choice = chooseImage({
    ...(values.image !== undefined ? { flag: values.image } : {}),
    images: values.images,
    ...(values.workspaceImage !== undefined ? { workspaceImage: values.workspaceImage } : {}),
    ...(agentConfig?.image !== undefined ? { agentImage: agentConfig.image } : {}),
    agent,
    command: commandName(input.command[0] ?? ""),
  });

  // Agent secrets are forwarded only when the user's own config opts in.
  const configEnv: EnvFlag[] = (agentConfig?.env ?? []).map((name) => ({ name, fromHost: true }) as const);
  const notes = settingNotes(eff);
  if (choice.note) notes.push(choice.note);
  const egress = egressSettings(eff, agent, input.env);
  if (egress.note) notes.push(egress.note);

  const settings: RunSettings = {
    ...values,
    image: choice.image,
    imageRule: choice.rule,
    agent: agent.name,
    entrypoint: agent.entrypoint ? [...agent.entrypoint] : undefined,
    seccomp: input.seccomp,
    capAdd: [...values.capAdd],
    envAllow: [...values.envAllow],
    envBlock: [...values.envBlock],
    envFlags: [...configEnv, ...values.env],
    envValues: { ...agent.env, ...persistence.env, ...values.envValues },
    workspaceTarget: values.workspacePath,
    extraMounts: persistence.mounts,
    setup: [...values.setup],
    agentStateTarget: persistence.stateTarget,
    egress: egress.settings,
  };
  return { settings, notes };
}

const fromFlag = (setting: Setting<unknown>) => setting.source.startsWith("flag ");

/** `--network public`: the egress proxy with any public host allowed after the user's rules (docs/egress.md). */
export const PUBLIC_NETWORK = "public";

/** The rule public mode adds after the user's: any host (the address checks still apply). */
const ANY_HOST = "*";

/**
 * Whether the run goes through the egress proxy, in which mode, and with
 * which entries (docs/egress.md, "Which network a run gets"):
 *  - `--network public`, or `public` from a config file unless `--egress`
 *    alone says otherwise: public mode, the egress rules (flag or config)
 *    first, then `*`;
 *  - `--egress`: the allow-list alone;
 *  - any other explicit `--network`: no proxy (the flag is the user's
 *    latest word);
 *  - `network: none` from any layer wins as the stricter choice;
 *  - a non-empty `network.egress`: the allow-list;
 *  - an agent run (core/agents.ts, kind "agent") whose network nobody
 *    chose: public mode, marked as the default, so it can fall back to
 *    bridge where the proxy cannot run (cli/public-mode.ts).
 * The agent's own API host joins the list whenever a list is in effect.
 */
export function egressSettings(
  eff: Pick<EffectiveSettings, "egress" | "network" | "audit">,
  agent: Pick<AgentProfile, "egress" | "kind">,
  env: Readonly<Record<string, string | undefined>>,
): { settings: EgressSettings | undefined; note?: string } {
  const egressByFlag = fromFlag(eff.egress);
  const networkByFlag = fromFlag(eff.network);
  const network = eff.network.value;
  const mode: EgressSettings["mode"] | "public-default" | undefined =
    network === PUBLIC_NETWORK && (networkByFlag || !egressByFlag)
      ? "public"
      : egressByFlag
        ? "allow-list"
        : networkByFlag || network === "none"
          ? undefined
          : eff.egress.value.length > 0
            ? "allow-list"
            : agent.kind === "agent" && eff.network.source === DEFAULT_SOURCE
              ? "public-default"
              : undefined;
  const audit = eff.audit.value;
  if (mode === undefined) {
    if (audit !== undefined) {
      throw new UsageError("sandbox run: --audit records the egress proxy's connections, and this run does not go through it.", {
        hint: "Add --egress HOSTS or --network public (or network.egress in your config), or drop --audit.",
      });
    }
    return { settings: undefined };
  }
  const isPublic = mode !== "allow-list";
  const user = [...eff.egress.value];
  const parsed = parseAllowList(user);
  if (!parsed.ok) {
    // Flag entries were checked when parsing; a bad entry here came from a config file.
    throw new ConfigError(`network.egress in ${eff.egress.source}: ${parsed.error}`, {
      hint: "Rules are read in order, the first match wins: host, host:port, *.domain, an IP address or CIDR range, * (last), ! before a rule to refuse, METHOD host/path to limit (docs/egress.md).",
    });
  }
  const rules = isPublic ? publicRules(user, eff.egress.source) : user;
  const agentDefaults = (agent.egress ?? []).filter((entry) => !user.includes(entry));
  const upstreams = env.SANDBOX_EGRESS_UPSTREAMS ? parseUpstreamOverrides(env.SANDBOX_EGRESS_UPSTREAMS) : undefined;
  if (upstreams && !upstreams.ok) {
    throw new UsageError(`SANDBOX_EGRESS_UPSTREAMS: ${upstreams.error}`, { hint: "It is for tests and debugging only (docs/egress.md); unset it for real runs." });
  }
  const note =
    !isPublic && !egressByFlag && network !== "bridge"
      ? `network.egress (${eff.egress.source}) takes precedence over container.network "${network}" (${eff.network.source})`
      : undefined;
  return {
    settings: {
      mode: isPublic ? "public" : "allow-list",
      ...(mode === "public-default" ? { byDefault: true } : {}),
      allow: mergeEgressEntries(rules, agentDefaults),
      agentDefaults,
      audit,
      hostsFile: env.SANDBOX_EGRESS_HOSTS || undefined,
      ...(upstreams?.ok && upstreams.value.length > 0 ? { upstreams: upstreams.value } : {}),
    },
    ...(note ? { note } : {}),
  };
}

/**
 * Public mode's list: the user's rules, then `*` (once: a list that already
 * ends in `*` keeps it). A rule that leaves `*` nothing to do (`!*`) makes
 * the list contradict itself, and is refused like any such list.
 */
function publicRules(user: readonly string[], source: string): string[] {
  if (user.at(-1) === ANY_HOST) return [...user];
  const rules = [...user, ANY_HOST];
  const parsed = parseAllowList(rules);
  if (parsed.ok) return rules;
  const message = `--network public allows any public host after the egress rules (it adds "*" last), and ${parsed.error}`;
  const hint = "Drop the rule that refuses every host, or use --egress alone for an allow-list without the closing \"*\" (docs/egress.md).";
  if (source.startsWith("flag ")) throw new UsageError(`sandbox run: ${message}`, { hint });
  throw new ConfigError(`network.egress in ${source}: ${message}`, { hint });
}

import { commandName, type AgentProfile } from "../core/agents.ts";
import type { EnvFlag } from "../core/env-filter.ts";
import { ConfigError, UsageError } from "../core/errors.ts";
import { chooseImage } from "../core/image-choice.ts";
import type { MountSpec } from "../core/engine-api.ts";
import type { EgressSettings, RunSettings, SeccompChoice } from "../core/plan.ts";
import { mergeEgressEntries, parseAllowList } from "../egress/allowlist.ts";
import { parseUpstreamOverrides } from "../egress/upstream-override.ts";
import { settingNotes, settingValues } from "./resolve.ts";
import type { EffectiveSettings, Setting } from "./settings.ts";

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

/**
 * Whether the run goes through the egress proxy, and with which entries.
 * `--egress` always does; an explicit `--network` never does (the flag is
 * the user's latest word); otherwise `network: none` from any layer wins as
 * the stricter choice, and a non-empty `network.egress` applies. The agent's
 * own API host joins the list only when a list is in effect.
 */
export function egressSettings(
  eff: Pick<EffectiveSettings, "egress" | "network" | "audit">,
  agent: Pick<AgentProfile, "egress">,
  env: Readonly<Record<string, string | undefined>>,
): { settings: EgressSettings | undefined; note?: string } {
  const byFlag = fromFlag(eff.egress);
  const on = byFlag || (!fromFlag(eff.network) && eff.network.value !== "none" && eff.egress.value.length > 0);
  const audit = eff.audit.value;
  if (!on) {
    if (audit !== undefined) {
      throw new UsageError("sandbox run: --audit records the egress proxy's connections, and this run has no egress allow-list.", {
        hint: "Add --egress HOSTS (or network.egress in your config), or drop --audit.",
      });
    }
    return { settings: undefined };
  }
  const user = [...eff.egress.value];
  const parsed = parseAllowList(user);
  if (!parsed.ok) {
    // Flag entries were checked when parsing; a bad entry here came from a config file.
    throw new ConfigError(`network.egress in ${eff.egress.source}: ${parsed.error}`, {
      hint: "Rules are read in order, the first match wins: host, host:port, *.domain, an IP address or CIDR range, * (last), ! before a rule to refuse, METHOD host/path to limit (docs/egress.md).",
    });
  }
  const agentDefaults = (agent.egress ?? []).filter((entry) => !user.includes(entry));
  const upstreams = env.SANDBOX_EGRESS_UPSTREAMS ? parseUpstreamOverrides(env.SANDBOX_EGRESS_UPSTREAMS) : undefined;
  if (upstreams && !upstreams.ok) {
    throw new UsageError(`SANDBOX_EGRESS_UPSTREAMS: ${upstreams.error}`, { hint: "It is for tests and debugging only (docs/egress.md); unset it for real runs." });
  }
  const note =
    !byFlag && eff.network.value !== "bridge"
      ? `network.egress (${eff.egress.source}) takes precedence over container.network "${eff.network.value}" (${eff.network.source})`
      : undefined;
  return {
    settings: {
      allow: mergeEgressEntries(user, agentDefaults),
      agentDefaults,
      audit,
      hostsFile: env.SANDBOX_EGRESS_HOSTS || undefined,
      ...(upstreams?.ok && upstreams.value.length > 0 ? { upstreams: upstreams.value } : {}),
    },
    ...(note ? { note } : {}),
  };
}

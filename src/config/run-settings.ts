import { detectAgent, commandName, type AgentProfile } from "../core/agents.ts";
import { chooseImage } from "../core/image-choice.ts";
import type { EnvFlag } from "../core/env-filter.ts";
import type { EgressSettings, MountSpec, RunSettings, SeccompChoice } from "../core/plan.ts";
import { ConfigError, UsageError } from "../core/errors.ts";
import { mergeEgressEntries, parseAllowList } from "../egress/allowlist.ts";
import type { RunOptions } from "../cli/run-options.ts";
import type { LoadedConfig } from "./load.ts";
import { effectiveSettings } from "./load.ts";
import { withOverride, type EffectiveSettings, type SettingName, type Settings } from "./settings.ts";

export interface ResolvedRun {
  settings: RunSettings;
  effective: EffectiveSettings;
  agent: AgentProfile;
  /** Notes from lower-trust layers that were overridden (print as warnings). */
  notes: string[];
}

/**
 * Flags > workspace file > global file > defaults, in one pure step. The
 * seccomp profile is loaded by the caller (file I/O) from the `seccomp`
 * setting this returns in `effective`, then passed to `finishSettings`.
 */
export function resolveEffective(options: RunOptions, loaded: LoadedConfig): EffectiveSettings {
  let eff = effectiveSettings(loaded);
  const flag = <K extends SettingName>(name: K, value: Settings[K] | undefined, label: string) => {
    if (value !== undefined) eff = withOverride(eff, name, value, `flag ${label}`);
  };
  flag("timeoutMs", options.timeoutMs, "--timeout");
  flag("network", options.network, "--network");
  flag("egress", options.egress, "--egress");
  flag("memoryBytes", options.memoryBytes, "--memory");
  flag("cpus", options.cpus, "--cpus");
  flag("pids", options.pids, "--pids-limit");
  flag("seccomp", options.seccomp, "--seccomp");
  flag("user", options.user, "--user");
  if (options.capAdd.length > 0) flag("capAdd", [...eff.capAdd.value, ...options.capAdd], "--cap-add");
  return eff;
}

export function detectRunAgent(options: RunOptions, env: Record<string, string | undefined>): AgentProfile {
  return detectAgent(options.command, options.agent ?? env.SANDBOX_AGENT);
}

export function finishSettings(
  options: RunOptions,
  loaded: LoadedConfig,
  eff: EffectiveSettings,
  seccomp: SeccompChoice,
  env: Record<string, string | undefined>,
  persistence: { mounts: MountSpec[]; env: Record<string, string> } = { mounts: [], env: {} },
): ResolvedRun {
  const agent = detectRunAgent(options, env);
  const agentConfig = loaded.global.agents?.[agent.name];
  const choice = chooseImage({
    ...(options.image !== undefined ? { flag: options.image } : {}),
    ...(loaded.global.images !== undefined ? { images: loaded.global.images } : {}),
    ...(loaded.workspaceFile?.image !== undefined ? { workspaceImage: loaded.workspaceFile.image } : {}),
    ...(agentConfig?.image !== undefined ? { agentImage: agentConfig.image } : {}),
    agent,
    command: commandName(options.command[0] ?? ""),
  });

  // Agent secrets are forwarded only when the user's own config opts in.
  const configEnv: EnvFlag[] = (agentConfig?.env ?? []).map((name) => ({ name, fromHost: true }) as const);
  const notes = Object.values(eff)
    .map((s) => s.note)
    .filter((n): n is string => n !== undefined);
  const egress = egressSettings(options, eff, agent, env);
  if (egress.note) notes.push(egress.note);

  const settings: RunSettings = {
    image: choice.image,
    imageRule: choice.rule,
    agent: agent.name,
    entrypoint: agent.entrypoint ? [...agent.entrypoint] : undefined,
    timeoutMs: eff.timeoutMs.value,
    network: eff.network.value,
    remove: eff.remove.value,
    memoryBytes: eff.memoryBytes.value,
    cpus: eff.cpus.value,
    pids: eff.pids.value,
    seccomp,
    readOnlyRoot: eff.readOnlyRoot.value,
    readOnlyWorkspace: options.readOnlyWorkspace,
    user: eff.user.value,
    capAdd: [...eff.capAdd.value],
    envAllow: [...eff.envAllow.value],
    envBlock: [...eff.envBlock.value],
    envFlags: [...configEnv, ...options.env],
    envValues: { ...persistence.env, ...(loaded.workspaceFile?.env ?? {}) },
    workspaceTarget: eff.workspacePath.value,
    pull: options.pull ?? "missing",
    name: options.name,
    extraMounts: persistence.mounts,
    setup: [...(loaded.workspaceFile?.setup ?? [])],
    ...(egress.settings ? { egress: egress.settings } : {}),
  };
  return { settings, effective: eff, agent, notes };
}

/**
 * Whether the run goes through the egress proxy, and with which entries.
 * `--egress` always does; an explicit `--network` never does (the flag is
 * the user's latest word); otherwise `network: none` from any layer wins as
 * the stricter choice, and a non-empty `network.egress` applies. The agent's
 * own API host joins the list only when a list is in effect.
 */
export function egressSettings(
  options: Pick<RunOptions, "egress" | "audit" | "network">,
  eff: Pick<EffectiveSettings, "egress" | "network">,
  agent: Pick<AgentProfile, "egress">,
  env: Record<string, string | undefined>,
): { settings: EgressSettings | undefined; note?: string } {
  const fromFlag = options.egress !== undefined;
  const on = fromFlag || (options.network === undefined && eff.network.value !== "none" && eff.egress.value.length > 0);
  if (!on) {
    if (options.audit !== undefined) {
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
      hint: "Entries are host, host:port, *.domain, an IP address or a CIDR range.",
    });
  }
  const agentDefaults = (agent.egress ?? []).filter((entry) => !user.includes(entry));
  const note =
    !fromFlag && eff.network.value !== "bridge"
      ? `network.egress (${eff.egress.source}) takes precedence over container.network "${eff.network.value}" (${eff.network.source})`
      : undefined;
  return {
    settings: {
      allow: mergeEgressEntries(user, agentDefaults),
      agentDefaults,
      audit: options.audit,
      hostsFile: env.SANDBOX_EGRESS_HOSTS || undefined,
    },
    ...(note ? { note } : {}),
  };
}

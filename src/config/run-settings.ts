import { detectAgent, commandName, type AgentProfile } from "../core/agents.ts";
import { chooseImage } from "../core/image-choice.ts";
import type { EnvFlag } from "../core/env-filter.ts";
import type { MountSpec, RunSettings, SeccompChoice } from "../core/plan.ts";
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
  };
  return { settings, effective: eff, agent, notes };
}

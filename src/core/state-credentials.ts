import type { AgentProfile } from "./agents.ts";
import { ruleVariables, type CredentialRule } from "./credentials.ts";
import type { MountSpec } from "./engine-api.ts";

/**
 * An agent's own login in its persisted state folder, hidden while the
 * egress proxy adds its credential (issue #15, docs/credentials.md, "Logins
 * in the agent's state"). Pure.
 *
 * The key the proxy adds never enters the container, so it cannot be saved
 * into the state. But the folder may hold a login from an earlier run
 * (`claude` after `/login`, `codex login`), and an agent that finds both a
 * saved login and the placeholder may prefer the login: the real token would
 * then be in the container after all, and the proxy's key unused. So for
 * such a run each file the profile names (AgentProfile.credentialFiles) is
 * covered by an empty read-only file: the agent reads nothing there and can
 * neither write nor replace it (a write fails, a rename onto it too). The
 * file on the host stays as it was, and a run without such a rule finds the
 * login again. A missing file is made, empty, just for the run (so the
 * engine does not make a root-owned one), and removed after it
 * (workspace/run-guard.ts, withMountpoints).
 *
 * A bind mount of a file over a file inside another bind: the same
 * mechanism the workspace guard masks secrets with, on Docker and Podman.
 */

export interface HiddenCredentials {
  /** The agent's state folder on the host. */
  source: string;
  /** Where it is mounted inside. */
  target: string;
  /** The hidden files, relative to the state folder. */
  files: string[];
  /** The empty file bound read-only over each (a file sandbox keeps in its state folder). */
  standIn: string;
  /** The rules in use that serve the agent: why its own logins are hidden. */
  rules: string[];
}

/** Where the empty stand-in lives, under sandbox's state folder (outside every agent's state); made afresh for each run (workspace/run-guard.ts, freshEmptyFile). */
export function credentialStandIn(stateRoot: string): string {
  return `${stateRoot}/stand-ins/empty`;
}

/**
 * The rules in use that serve the agent: those it authenticates with (one
 * of the rule's variables is among its authEnv) and those for its own API
 * hosts (a rule of the user's for api.anthropic.com serves claude, whatever
 * variable it reads).
 */
export function rulesServingAgent(agent: Pick<AgentProfile, "authEnv" | "egress">, used: readonly CredentialRule[]): CredentialRule[] {
  const own = new Set(agent.authEnv);
  const hosts = new Set((agent.egress ?? []).map((entry) => entry.replace(/:\d+$/, "")));
  return used.filter((rule) => ruleVariables(rule).some((name) => own.has(name)) || rule.hosts.some((host) => hosts.has(host)));
}

/** What to hide for a run; undefined when nothing is (no state kept, no login files named, no rule serving the agent). */
export function planHiddenCredentials(input: {
  agent: Pick<AgentProfile, "authEnv" | "egress" | "credentialFiles">;
  /** The state folder and its mount point, when the run keeps the agent's state. */
  state: { source: string; target: string } | undefined;
  /** The credential rules the run's proxy adds. */
  used: readonly CredentialRule[];
  standIn: string;
}): HiddenCredentials | undefined {
  const files = input.agent.credentialFiles ?? [];
  if (!input.state || files.length === 0) return undefined;
  const serving = rulesServingAgent(input.agent, input.used);
  if (serving.length === 0) return undefined;
  return { source: input.state.source, target: input.state.target, files: [...files], standIn: input.standIn, rules: serving.map((rule) => rule.name) };
}

/** The read-only binds that cover the files, inside the state folder's mount. */
export function hiddenCredentialMounts(hidden: HiddenCredentials | undefined): MountSpec[] {
  if (!hidden) return [];
  return hidden.files.map((file) => ({ Type: "bind", Source: hidden.standIn, Target: `${hidden.target}/${file}`, ReadOnly: true }));
}

/** The info line (hidden by --quiet). */
export function hiddenCredentialsLine(agent: Pick<AgentProfile, "title">, hidden: HiddenCredentials): string {
  const files = hidden.files.join(", ");
  const rules = `${hidden.rules.length === 1 ? "rule" : "rules"} ${hidden.rules.join(", ")}`;
  return `credentials: ${agent.title}'s own login in its state folder (${files}) is hidden in this run, as the proxy adds its credential (${rules}): the agent reads an empty file there and cannot save a login; the file on this host is left as it is (docs/credentials.md)`;
}

/** Why a login file of the state folder cannot be hidden safely (a link would be followed, a folder cannot be covered by a file), or undefined. */
export function credentialFileProblem(kind: "file" | "missing" | "symlink" | "dir" | "other"): string | undefined {
  if (kind === "file" || kind === "missing") return undefined;
  return kind === "symlink" ? "is a symbolic link, which sandbox does not follow" : kind === "dir" ? "is a folder, not a file" : "is not a regular file";
}

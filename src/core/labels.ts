/**
 * Labels mark what sandbox made. Only containers carrying MANAGED=true are
 * ever listed, inspected or removed by sandbox; a plain `sandbox=true` from
 * some other tool is not ours.
 */
export const LABEL_PREFIX = "io.sandbox.";
export const LABELS = {
  managed: "io.sandbox.managed",
  workspace: "io.sandbox.workspace",
  command: "io.sandbox.command",
  agent: "io.sandbox.agent",
  version: "io.sandbox.version",
  created: "io.sandbox.created",
  seccomp: "io.sandbox.seccomp",
  seccompHash: "io.sandbox.seccomp.sha256",
  envNames: "io.sandbox.env",
  network: "io.sandbox.network",
  /** Escapes allowed on purpose (`--allow ptrace`), comma-separated; absent when none. */
  allow: "io.sandbox.allow",
} as const;

export const MANAGED_FILTER = `${LABELS.managed}=true`;

export function isManaged(labels: Record<string, string> | null | undefined): boolean {
  return labels?.[LABELS.managed] === "true";
}

const MAX_COMMAND_LABEL = 1024;

export interface LabelInput {
  workspace: string;
  command: readonly string[];
  agent: string;
  version: string;
  created: Date;
  seccomp: "default" | "custom" | "unconfined";
  seccompHash: string | undefined;
  envNames: readonly string[];
  network: string;
  /** `--allow` escapes; none by default. */
  allow?: readonly string[] | undefined;
}

export function buildLabels(input: LabelInput): Record<string, string> {
  const command = JSON.stringify(input.command);
  return {
    [LABELS.managed]: "true",
    [LABELS.workspace]: input.workspace,
    [LABELS.command]: command.length > MAX_COMMAND_LABEL ? `${command.slice(0, MAX_COMMAND_LABEL)}…` : command,
    [LABELS.agent]: input.agent,
    [LABELS.version]: input.version,
    [LABELS.created]: input.created.toISOString(),
    [LABELS.seccomp]: input.seccomp,
    ...(input.seccompHash ? { [LABELS.seccompHash]: input.seccompHash } : {}),
    [LABELS.envNames]: [...input.envNames].sort().join(","),
    [LABELS.network]: input.network,
    ...(input.allow && input.allow.length > 0 ? { [LABELS.allow]: [...new Set(input.allow)].sort().join(",") } : {}),
  };
}

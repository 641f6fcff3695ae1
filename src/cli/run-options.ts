import { UsageError } from "../core/errors.ts";
import { parseDuration, DURATION_EXPECTED } from "../core/duration.ts";
import { parseSize, SIZE_EXPECTED } from "../core/size.ts";
import { parseEnvFlag, type EnvFlag } from "../core/env-filter.ts";
import { normalizeCap } from "../core/capabilities.ts";
import { parseInsecureAllow } from "../core/preflight.ts";
import type { PullPolicy } from "../core/plan.ts";
import { parseAllowEntry, splitEgressList } from "../egress/allowlist.ts";
import { parseFlags, splitAtCommand, tristate, type OptionSpec } from "./args.ts";

export const RUN_OPTIONS = {
  image: { type: "string" },
  workspace: { type: "string", short: "w" },
  keep: { type: "boolean" },
  tty: { type: "boolean", short: "t" },
  "no-tty": { type: "boolean" },
  interactive: { type: "boolean", short: "i" },
  "no-interactive": { type: "boolean" },
  timeout: { type: "string" },
  pull: { type: "string" },
  "dry-run": { type: "boolean" },
  env: { type: "string", short: "e", multiple: true },
  memory: { type: "string", short: "m" },
  cpus: { type: "string" },
  "pids-limit": { type: "string" },
  network: { type: "string" },
  egress: { type: "string", multiple: true },
  audit: { type: "string" },
  user: { type: "string", short: "u" },
  "cap-add": { type: "string", multiple: true },
  seccomp: { type: "string" },
  "read-only-workspace": { type: "boolean" },
  "workspace-mode": { type: "string" },
  "no-mask": { type: "boolean" },
  "insecure-allow": { type: "string", multiple: true },
  name: { type: "string" },
  agent: { type: "string" },
  cache: { type: "boolean" },
  quiet: { type: "boolean", short: "q" },
  host: { type: "string", short: "H" },
  help: { type: "boolean", short: "h" },
} as const satisfies OptionSpec;

/** `sandbox run` flags, validated but not yet merged with config. */
export interface RunOptions {
  command: string[];
  help: boolean;
  image: string | undefined;
  workspace: string | undefined;
  keep: boolean;
  tty: boolean | undefined;
  interactive: boolean | undefined;
  timeoutMs: number | undefined;
  pull: PullPolicy | undefined;
  dryRun: boolean;
  env: EnvFlag[];
  memoryBytes: number | undefined;
  cpus: number | undefined;
  pids: number | undefined;
  network: string | undefined;
  /** --egress HOSTS (repeatable comma lists), validated; undefined when not given. */
  egress: string[] | undefined;
  /** --audit FILE, as given (relative to the working directory). */
  audit: string | undefined;
  user: string | undefined;
  capAdd: string[];
  seccomp: string | undefined;
  readOnlyWorkspace: boolean;
  /** --workspace-mode bind|copy; undefined: bind for local engines, copy for remote ones. */
  workspaceMode: "bind" | "copy" | undefined;
  /** --no-mask: leave secret-looking workspace files visible (docs/guard.md). */
  noMask: boolean;
  /** --insecure-allow NAME: protections the engine may lack (validated in core/preflight.ts). */
  insecureAllow: string[];
  name: string | undefined;
  agent: string | undefined;
  cache: boolean;
  quiet: boolean;
  host: string | undefined;
}

function fail(message: string, hint = "Run 'sandbox run --help' to see the flags and their forms."): never {
  throw new UsageError(`sandbox run: ${message}`, { hint });
}

export function parseRunArgs(argv: readonly string[]): RunOptions {
  const { flags, rest } = splitAtCommand(argv, RUN_OPTIONS);
  const v = parseFlags(flags, RUN_OPTIONS, "run");
  const help = v.help === true;
  if (rest.length === 0 && !help) fail("no command given, e.g. 'sandbox run sh -c \"echo hi\"'.");

  const timeout = v.timeout === undefined ? undefined : parseDuration(v.timeout);
  if (timeout && !timeout.ok) fail(`--timeout ${timeout.error}.`);
  if (timeout?.ok && timeout.value <= 0) fail("--timeout must be longer than zero.");
  const memory = v.memory === undefined ? undefined : parseSize(v.memory);
  if (memory && !memory.ok) fail(`--memory ${memory.error}.`);
  if (memory?.ok && memory.value < 6 * 1024 * 1024) fail("--memory must be at least 6m (the engine's minimum).");

  let cpus: number | undefined;
  if (v.cpus !== undefined) {
    cpus = Number(v.cpus);
    if (!/^\d+(\.\d+)?$/.test(v.cpus) || !(cpus > 0)) fail(`--cpus "${v.cpus}" is not a positive number such as 1 or 1.5.`);
  }
  let pids: number | undefined;
  if (v["pids-limit"] !== undefined) {
    pids = Number(v["pids-limit"]);
    if (!/^\d+$/.test(v["pids-limit"]) || pids < 1) fail(`--pids-limit "${v["pids-limit"]}" is not a positive whole number such as 512.`);
  }
  let pull: PullPolicy | undefined;
  if (v.pull !== undefined) {
    if (v.pull !== "missing" && v.pull !== "always" && v.pull !== "never") fail(`--pull "${v.pull}" is not one of missing, always, never.`);
    pull = v.pull;
  }
  const env: EnvFlag[] = [];
  for (const text of v.env ?? []) {
    const parsed = parseEnvFlag(text);
    if ("error" in parsed) fail(parsed.error);
    env.push(parsed);
  }
  const capAdd: string[] = [];
  for (const text of v["cap-add"] ?? []) {
    const cap = normalizeCap(text);
    if (!cap) fail(`--cap-add "${text}" is not a capability name such as NET_BIND_SERVICE.`);
    capAdd.push(cap);
  }
  if (v.network !== undefined && !/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(v.network)) {
    fail(`--network "${v.network}" is not bridge, none or a network name.`);
  }
  let egress: string[] | undefined;
  if (v.egress !== undefined) {
    egress = v.egress.flatMap(splitEgressList);
    if (egress.length === 0) fail("--egress needs hosts, e.g. --egress api.example.com,*.github.com (use --network none for no network).");
    for (const entry of egress) {
      const parsed = parseAllowEntry(entry);
      if (!parsed.ok) fail(`--egress ${parsed.error}.`, "Entries are host, host:port, *.domain, an IP address or a CIDR range, separated by commas.");
    }
    if (v.network !== undefined) fail("--egress and --network cannot be combined: --egress puts the container on its own filtered network.");
  }
  if (v.audit !== undefined && v.audit === "") fail("--audit needs a file name.");
  if (v.user !== undefined && !/^[a-zA-Z0-9_.-]+(:[a-zA-Z0-9_.-]+)?$/.test(v.user)) {
    fail(`--user "${v.user}" is not a user such as 1000 or 1000:1000.`);
  }
  const workspaceMode = v["workspace-mode"];
  if (workspaceMode !== undefined && workspaceMode !== "bind" && workspaceMode !== "copy") {
    fail(`--workspace-mode "${workspaceMode}" is not bind or copy.`);
  }
  if (v.name !== undefined && !/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(v.name)) {
    fail(`--name "${v.name}" may only contain letters, digits, '_', '.' and '-'.`);
  }

  return {
    command: rest,
    help,
    image: v.image,
    workspace: v.workspace,
    keep: v.keep === true,
    tty: tristate(flags, "tty", "t"),
    interactive: tristate(flags, "interactive", "i"),
    timeoutMs: timeout?.ok ? timeout.value : undefined,
    pull,
    dryRun: v["dry-run"] === true,
    env,
    memoryBytes: memory?.ok ? memory.value : undefined,
    cpus,
    pids,
    network: v.network,
    egress,
    audit: v.audit,
    user: v.user,
    capAdd,
    seccomp: v.seccomp,
    readOnlyWorkspace: v["read-only-workspace"] === true,
    workspaceMode,
    noMask: v["no-mask"] === true,
    insecureAllow: parseInsecureAllow(v["insecure-allow"] ?? []),
    name: v.name,
    agent: v.agent,
    cache: v.cache === true,
    quiet: v.quiet === true,
    host: v.host,
  };
}

export { DURATION_EXPECTED, SIZE_EXPECTED };

import { buildLabels, LABELS } from "./labels.ts";
import { DEFAULT_ENV_ALLOW, DEFAULT_ENV_BLOCK, filterHostEnv, globMatcher, type EnvFlag } from "./env-filter.ts";
import { DANGEROUS_CAPS } from "./capabilities.ts";
import type { CreateBody, HostConfig, MountSpec } from "./engine-api.ts";
import type { CopyBackLimits } from "./copy-limits.ts";
import { PLACEHOLDER } from "./credentials.ts";
import { hiddenCredentialMounts, type HiddenCredentials } from "./state-credentials.ts";


/**
 * A RunPlan is everything needed to create and drive one container, built by
 * pure functions from options, settings and host facts. It is what
 * `--dry-run` prints and what the engine layer executes; nothing downstream
 * makes a decision of its own.
 */

export type PullPolicy = "missing" | "always" | "never";

export type SeccompChoice =
  | { kind: "default"; json: string; hash: string }
  | { kind: "custom"; json: string; hash: string; path: string }
  | { kind: "unconfined" };

/** Effective settings after config files and flags were merged. */
/**
 * What the plan is built from: the resolved settings (config/settings.ts
 * declares them; this names the ones the plan reads) plus what was derived
 * from them (the image choice, the agent, the loaded seccomp profile, the
 * persistence mounts, the egress set-up).
 */
export interface RunSettings {
  image: string;
  imageRule: string;
  agent: string;
  entrypoint: string[] | undefined;
  timeoutMs: number;
  network: string;
  remove: boolean;
  memoryBytes: number;
  cpus: number | undefined;
  pids: number;
  seccomp: SeccompChoice;
  readOnlyRoot: boolean;
  readOnlyWorkspace: boolean;
  user: string | undefined;
  capAdd: string[];
  /** `--allow` / `security.allow`: escapes loosened on purpose (already applied to `seccomp`). */
  allow: readonly string[];
  envAllow: string[];
  envBlock: string[];
  /** `--env` flags and config-driven forwards, in order. */
  envFlags: EnvFlag[];
  /** Literal values from the workspace file (`env:`). */
  envValues: Record<string, string>;
  workspaceTarget: string;
  pull: PullPolicy;
  name: string | undefined;
  /** Extra mounts decided elsewhere (state volume, cache). */
  extraMounts: MountSpec[];
  /** Shell steps from `.sandbox.yml`, run before the command. */
  setup: string[];
  /** Where the agent's persisted state is mounted (core/persistence.ts), when it is: kept from setup steps. */
  agentStateTarget?: string | undefined;
  /** The agent's own login files in its state, covered while the proxy adds its credential (core/state-credentials.ts). */
  hiddenCredentials?: HiddenCredentials | undefined;
  /** Set when the run goes through the egress proxy (--egress, network.egress, --network public, the agents' default); `network` is then ignored. */
  egress?: EgressSettings | undefined;
  /** Force a TTY on or off; undefined: when stdin and stdout are terminals. */
  tty: boolean | undefined;
  /** Forward stdin; undefined: when it carries data or with a TTY. */
  interactive: boolean | undefined;
  /** --keep */
  keep: boolean;
  /** --workspace-mode; "auto" (the default) is settled once the engine is known (container-body.ts). */
  workspaceMode: WorkspaceMode;
  /** Copy mode's caps on what comes back (`workspace.copy_back`). */
  copyBack: CopyBackLimits;
}

/**
 * How an egress run's list came about (docs/egress.md): "allow-list" is the
 * user's rules alone (--egress, network.egress); "public" (--network public,
 * the default for agents) is the user's rules, if any, then `*`, so any host
 * whose addresses are public goes through, while the address checks keep
 * loopback, private, link-local and this host's own addresses out.
 */
export type EgressMode = "allow-list" | "public";

export interface EgressSettings {
  /** Absent: "allow-list". */
  mode?: EgressMode | undefined;
  /**
   * Public mode chosen by sandbox for an agent run, not by the user: where
   * the proxy cannot run, the run falls back to bridge with a warning
   * instead of failing (cli/public-mode.ts).
   */
  byDefault?: boolean | undefined;
  /** Allow-list entries: the user's, then the agent's defaults (src/egress/allowlist.ts); in public mode `*` last. */
  allow: string[];
  /** The agent's own entries among `allow` (shown by --dry-run). */
  agentDefaults: string[];
  /** --audit FILE, absolute. */
  audit: string | undefined;
  /** SANDBOX_EGRESS_HOSTS: a hosts file the proxy resolves from instead of DNS (tests, debugging). */
  hostsFile: string | undefined;
  /** SANDBOX_EGRESS_UPSTREAMS: `host:port` targets dialled at a fixed address instead (tests, debugging; egress/upstream-override.ts). */
  upstreams?: Array<{ target: string; host: string; port: number }> | undefined;
  /**
   * Credentials the proxy adds to requests (issue #15, docs/credentials.md):
   * names only, never a value. The container gets each placeholder variable
   * set to PLACEHOLDER instead.
   */
  credentials?: CredentialUse[] | undefined;
  /**
   * The host's proxy the egress proxy's own connections go through
   * (HTTPS_PROXY/HTTP_PROXY, egress/upstream-proxy.ts): `http://host:port`
   * each, never the credentials in the URL; NO_PROXY as written.
   */
  upstreamProxy?: { https?: string; http?: string; noProxy?: string } | undefined;
}

/** A credential rule in use, as the plan records it: what is added where, and from which source (named, not read). */
export interface CredentialUse {
  rule: string;
  hosts: string[];
  header: string;
  /** Where the value comes from on the host: `$ANTHROPIC_API_KEY`, `` `gh auth token` ``. */
  from: string;
  /** Variables set to PLACEHOLDER in the container. */
  placeholders: string[];
}

/** The per-run network and proxy (src/egress/gateway.ts); the proxy address is known only once the network exists. */
export interface EgressPlan extends EgressSettings {
  /** Per-run `internal` network the container joins. */
  network: string;
  /** Its bridge interface name on the host (at most 15 characters). */
  bridge: string;
  labels: Record<string, string>;
}


/** Facts about the host, gathered by the CLI shell before planning. */
export interface HostFacts {
  /** Workspace path, already resolved through symlinks. */
  workspace: string;
  uid: number | undefined;
  gid: number | undefined;
  env: Record<string, string | undefined>;
  stdinIsTTY: boolean;
  stdoutIsTTY: boolean;
  version: string;
  now: Date;
  /** Random hex for the container name (injected so plans are reproducible in tests). */
  randomId: string;
  /** The caller's terminal size, when stdout is a terminal. */
  terminalSize?: { rows: number; columns: number } | undefined;
}

/**
 * How the workspace reaches the container: "bind" mounts the host folder
 * (local engines), "copy" sends it through the archive API and brings the
 * changes back (remote engines, which cannot see our paths; see
 * engine/workspace-copy.ts). "auto" is bind until the engine turns out remote.
 * "review" mounts an overlay whose lower layer is the workspace and whose
 * upper layer is a change set in sandbox's state folder: nothing the command
 * writes reaches the workspace until applied (docs/review.md).
 */
export type WorkspaceMode = "auto" | "bind" | "copy" | "review";

export interface RunPlan {
  name: string;
  image: string;
  imageRule: string;
  pull: PullPolicy;
  command: string[];
  agent: string;
  tty: boolean;
  /** Attach our stdin to the container's. */
  stdin: boolean;
  keep: boolean;
  timeoutMs: number;
  /** Seconds between SIGTERM and SIGKILL when stopping. */
  stopGraceSeconds: number;
  seccomp: SeccompChoice["kind"];
  seccompHash: string | undefined;
  /** Escapes allowed on purpose (`--allow ptrace`), sorted. */
  allow: string[];
  /** Names of the variables sandbox set (host-forwarded or explicit); values are never recorded. */
  forwardedEnvNames: string[];
  /** Names whose values are secrets and must be shown as *** anywhere we print. */
  secretEnvNames: string[];
  /** Host variables that matched allow but were blocked. */
  blockedEnvNames: string[];
  warnings: string[];
  /** The Engine API create body. */
  create: CreateBody;
  /** The host workspace (resolved) and how it reaches the container. */
  workspace: string;
  workspaceMode: WorkspaceMode;
  /** In copy mode: the container's changes are not copied back. */
  workspaceReadOnly: boolean;
  /** In copy mode: the caps on what comes back (core/copy-limits.ts). */
  copyBack: CopyBackLimits;
  egress?: EgressPlan | undefined;
  /** The agent's login files in its state folder, hidden for this run (core/state-credentials.ts); the run makes missing ones as mountpoints. */
  hiddenCredentials?: HiddenCredentials | undefined;
  /**
   * Setup steps that run first, in a container of their own (setupApart):
   * present when the run hands the command something of the user's that
   * the repository's steps must not see.
   */
  setup?: SetupPlan | undefined;
}

export interface SetupPlan {
  /** The setup container: same image, workspace, network and limits; no forwarded variables, no agent state. */
  plan: RunPlan;
  /** What the steps do not get: variable names, and the agent state's mount point. */
  withheld: { env: string[]; state: string | undefined };
}

export const CONTAINER_HOME = "/home/sandbox";
export const MIB = 1024 * 1024;
export const TMPFS_SIZES = { tmp: 1024 * MIB, home: 1024 * MIB, run: 16 * MIB, shm: 64 * MIB } as const;
// Explicit because some engines pass on huge inherited limits that runtimes reject; kept
// below common daemon hard limits (a runtime cannot raise the hard limit past its own).
export const NOFILE_LIMIT = 16384;
export const STOP_GRACE_SECONDS = 10;

export function containerName(command: readonly string[], randomId: string): string {
  const word = (command[0] ?? "run").split("/").pop() ?? "run";
  const safe = word.replace(/[^a-zA-Z0-9_.-]/g, "").replace(/^[^a-zA-Z0-9]+/, "").slice(0, 32) || "run";
  return `sandbox-${safe}-${randomId}`;
}

/** uid:gid of the caller, so files created in /work belong to them on the host. */
export function defaultUser(uid: number | undefined, gid: number | undefined): string {
  if (uid === undefined || gid === undefined) return "1000:1000";
  return `${uid}:${gid}`;
}

export function buildRunPlan(command: string[], settings: RunSettings, host: HostFacts): RunPlan {
  const apart = setupApart(command, settings, host);
  if (apart) return { ...buildRunPlan(command, apart.command, host), setup: { plan: setupPlanOf(buildRunPlan([], apart.setup, host)), withheld: apart.withheld } };
  const warnings: string[] = [];
  const tty = settings.tty ?? (host.stdinIsTTY && host.stdoutIsTTY);
  // Forward stdin when it carries data (a pipe or file) or the user asked;
  // a terminal stdin without a TTY would only make the command wait.
  const stdin = settings.interactive ?? (tty || !host.stdinIsTTY);

  const env = resolveEnv(settings, host, warnings);
  const user = settings.user ?? defaultUser(host.uid, host.gid);
  const [uidText, gidText] = user.split(":");
  const numericUser = /^\d+$/.test(uidText ?? "") ? uidText : undefined;
  const numericGroup = /^\d+$/.test(gidText ?? "") ? gidText : numericUser;

  for (const cap of settings.capAdd) {
    if (DANGEROUS_CAPS.has(cap)) warnings.push(`--cap-add ${cap} weakens the sandbox: it gives the command powers that can reach the host.`);
  }
  const allow = [...new Set(settings.allow)].sort();
  if (allow.includes("ptrace")) {
    warnings.push(
      "--allow ptrace: processes in the container can trace each other and read and write each other's memory (ptrace, process_vm_readv/writev); processes outside the container stay out of reach.",
    );
  }
  if (settings.network === "host" && !settings.egress) {
    warnings.push("--network host: the command shares the host's network, so it can reach services on the host's localhost and every network the host is on.");
  }
  if (settings.seccomp.kind === "unconfined") warnings.push("seccomp is unconfined: the command can use every system call, including those that escape containers.");
  if (!settings.readOnlyRoot) warnings.push("the root filesystem is writable (read_only_root: false).");

  const securityOpt = ["no-new-privileges:true"];
  securityOpt.push(settings.seccomp.kind === "unconfined" ? "seccomp=unconfined" : `seccomp=${settings.seccomp.json}`);

  const homeOwner = numericUser ? `,uid=${numericUser},gid=${numericGroup}` : "";
  const tmpfs: Record<string, string> = {
    // exec on /tmp and $HOME: Node and Python native modules unpack and load from there.
    "/tmp": `rw,exec,nosuid,nodev,size=${TMPFS_SIZES.tmp},mode=1777`,
    // Programs expect a writable /var/tmp as much as /tmp (the root is read-only).
    "/var/tmp": `rw,exec,nosuid,nodev,size=${TMPFS_SIZES.tmp},mode=1777`,
    [CONTAINER_HOME]: `rw,exec,nosuid,nodev,size=${TMPFS_SIZES.home},mode=0700${homeOwner}`,
    // /run holds sockets and pid files, never programs.
    "/run": `rw,noexec,nosuid,nodev,size=${TMPFS_SIZES.run},mode=0755`,
  };

  const workspaceMode = settings.workspaceMode;
  const workspaceMount = workspaceMountFor(workspaceMode, host.workspace, settings.workspaceTarget, settings.readOnlyWorkspace);

  const { cmd, entrypoint } = commandWithSetup(command, settings);
  const name = settings.name ?? containerName(command, host.randomId);
  const egressNetwork = settings.egress ? `${name}-egress` : undefined;
  const labels = buildLabels({
    workspace: host.workspace,
    command,
    agent: settings.agent,
    version: host.version,
    created: host.now,
    seccomp: settings.seccomp.kind,
    seccompHash: settings.seccomp.kind === "unconfined" ? undefined : settings.seccomp.hash,
    envNames: env.forwardedNames,
    network: settings.egress ? "egress" : settings.network,
    allow,
  });
  const egress: EgressPlan | undefined =
    settings.egress && egressNetwork
      ? {
          ...settings.egress,
          network: egressNetwork,
          bridge: `sbx-${host.randomId.slice(0, 11)}`,
          labels: { [LABELS.managed]: "true", [LABELS.workspace]: host.workspace, "io.sandbox.container": name },
        }
      : undefined;

  const create: CreateBody = {
    Image: settings.image,
    Cmd: cmd,
    ...(entrypoint ? { Entrypoint: entrypoint } : {}),
    Env: env.list,
    WorkingDir: settings.workspaceTarget,
    User: user,
    Tty: tty,
    OpenStdin: stdin,
    StdinOnce: stdin,
    AttachStdin: stdin,
    AttachStdout: true,
    AttachStderr: true,
    Labels: labels,
    HostConfig: {
      Init: true,
      // Decided with the run-time facts (container-body.ts).
      AutoRemove: false,
      Privileged: false,
      Mounts: [workspaceMount, ...settings.extraMounts, ...hiddenCredentialMounts(settings.hiddenCredentials)],
      CapDrop: ["ALL"],
      CapAdd: settings.capAdd,
      SecurityOpt: securityOpt,
      ReadonlyRootfs: settings.readOnlyRoot,
      Tmpfs: tmpfs,
      ShmSize: TMPFS_SIZES.shm,
      Memory: settings.memoryBytes,
      // Equal to Memory: no swap beyond the limit.
      MemorySwap: settings.memoryBytes,
      ...(settings.cpus !== undefined ? { NanoCpus: Math.round(settings.cpus * 1e9) } : {}),
      PidsLimit: settings.pids,
      Ulimits: [{ Name: "nofile", Soft: NOFILE_LIMIT, Hard: NOFILE_LIMIT }],
      NetworkMode: egressNetwork ?? settings.network,
      // The output reaches the user through attach only: a json-file (Docker) or k8s-file
      // (Podman) log would keep a second copy on the host, as large as the command makes it.
      LogConfig: { Type: "none", Config: {} },
      ...(tty && host.terminalSize ? { ConsoleSize: [host.terminalSize.rows, host.terminalSize.columns] as [number, number] } : {}),
    },
  };

  return {
    name,
    image: settings.image,
    imageRule: settings.imageRule,
    pull: settings.pull,
    command,
    agent: settings.agent,
    tty,
    stdin,
    keep: settings.keep || !settings.remove,
    timeoutMs: settings.timeoutMs,
    stopGraceSeconds: STOP_GRACE_SECONDS,
    seccomp: settings.seccomp.kind,
    seccompHash: settings.seccomp.kind === "unconfined" ? undefined : settings.seccomp.hash,
    allow,
    forwardedEnvNames: env.forwardedNames,
    secretEnvNames: env.secretNames,
    blockedEnvNames: env.blockedNames,
    warnings,
    create,
    workspace: host.workspace,
    workspaceMode,
    workspaceReadOnly: settings.readOnlyWorkspace,
    copyBack: settings.copyBack,
    ...(egress ? { egress } : {}),
    ...(settings.hiddenCredentials ? { hiddenCredentials: settings.hiddenCredentials } : {}),
  };
}

/**
 * Copy mode: an anonymous volume (removed with the container) the archive API
 * can write into before start, although the root is read-only. It stays
 * writable: --read-only-workspace then means "changes are not copied back".
 * NoCopy: the image's own files at the target must not join the workspace
 * (they would be copied back as new files).
 */
export function workspaceMountFor(mode: WorkspaceMode, source: string, target: string, readOnly: boolean): MountSpec {
  if (mode === "copy") return { Type: "volume", Target: target, VolumeOptions: { NoCopy: true } };
  return { Type: "bind", Source: source, Target: target, ReadOnly: readOnly };
}

interface ResolvedEnv {
  list: string[];
  forwardedNames: string[];
  secretNames: string[];
  blockedNames: string[];
}

function resolveEnv(settings: RunSettings, host: HostFacts, warnings: string[]): ResolvedEnv {
  const allow = [...DEFAULT_ENV_ALLOW, ...settings.envAllow];
  const block = [...DEFAULT_ENV_BLOCK, ...settings.envBlock];
  const isBlocked = globMatcher(block);
  const decision = filterHostEnv(host.env, { allow, block });
  const values = new Map<string, string>(Object.entries(decision.forwarded));
  const forwarded = new Set(Object.keys(decision.forwarded));
  const secrets = new Set<string>();

  for (const [name, value] of Object.entries(settings.envValues)) {
    values.set(name, value);
    forwarded.add(name);
  }
  for (const flag of settings.envFlags) {
    if (flag.fromHost) {
      const value = host.env[flag.name];
      if (value === undefined) {
        warnings.push(`--env ${flag.name}: not set on the host, so not forwarded.`);
        continue;
      }
      values.set(flag.name, value);
      forwarded.add(flag.name);
      if (isBlocked(flag.name)) {
        secrets.add(flag.name);
        warnings.push(`forwarding ${flag.name} from the host on request (it matches the secret block-list).`);
      }
    } else {
      values.set(flag.name, flag.value);
      forwarded.add(flag.name);
      if (isBlocked(flag.name)) secrets.add(flag.name);
    }
  }
  // Credentials the proxy adds: the container holds a placeholder, never the value (docs/credentials.md).
  for (const use of settings.egress?.credentials ?? []) {
    for (const name of use.placeholders) {
      values.set(name, PLACEHOLDER);
      forwarded.add(name);
    }
  }
  // Ours last so a forwarded HOME/PATH cannot point outside the writable home.
  values.set("HOME", CONTAINER_HOME);
  values.set("SANDBOX", "1");
  return {
    list: [...values].map(([k, v]) => `${k}=${v}`),
    forwardedNames: [...forwarded].sort(),
    secretNames: [...secrets].sort(),
    blockedNames: decision.blocked.filter((n) => !forwarded.has(n)),
  };
}

/**
 * Setup steps come with the repository: they must not see what the user
 * hands the command, i.e. variables given on purpose (`--env NAME` or
 * `--env K=V`, `agents.<name>.env`, `env.allow` beyond the built-in list),
 * the credentials the egress proxy adds (their placeholder variables) and
 * the agent's persisted state (login tokens, sessions). When the run
 * has any of these, the steps run first in a container of their own with
 * neither (same image, workspace, network, limits and guard), and the
 * command then starts in a fresh one without steps. Otherwise they stay in
 * the command's container, before it (commandWithSetup). docs/config.md.
 */
function setupApart(
  command: string[],
  settings: RunSettings,
  host: HostFacts,
): { command: RunSettings; setup: RunSettings; withheld: SetupPlan["withheld"] } | undefined {
  if (settings.setup.length === 0) return undefined;
  // The user's credentials are theirs too: the steps' proxy adds none.
  const bare: RunSettings = { ...settings, envFlags: [], envAllow: [], ...(settings.egress ? { egress: { ...settings.egress, credentials: [] } } : {}) };
  const kept = new Set(resolveEnv(bare, host, []).forwardedNames);
  const env = resolveEnv(settings, host, []).forwardedNames.filter((name) => !kept.has(name));
  const state = settings.agentStateTarget;
  if (env.length === 0 && state === undefined) return undefined;
  const name = settings.name ?? containerName(command, host.randomId);
  return {
    command: { ...settings, name, setup: [] },
    setup: {
      ...bare,
      name: `${name}-setup`,
      entrypoint: undefined,
      extraMounts: settings.extraMounts.filter((m) => m.Target !== state),
      agentStateTarget: undefined,
      hiddenCredentials: undefined,
      tty: false,
      interactive: false,
      keep: false,
      remove: true,
    },
    withheld: { env, state },
  };
}

/** The setup container's plan: labelled as such (it runs no command of the user's). */
function setupPlanOf(plan: RunPlan): RunPlan {
  return { ...plan, command: ["sandbox-setup"], create: { ...plan.create, Labels: { ...plan.create.Labels, [LABELS.command]: JSON.stringify(["sandbox-setup"]) } } };
}

/**
 * Setup steps from `.sandbox.yml` run in the same container before the
 * command (unless setupApart moved them to a container of their own): each
 * is echoed, the first failure ends the run with its code, and then the
 * command replaces the shell so its exit code is the run's (with no
 * command, `exec` does nothing and the steps' container exits 0).
 */
function commandWithSetup(command: string[], settings: RunSettings): { cmd: string[]; entrypoint: string[] | undefined } {
  if (settings.setup.length === 0) return { cmd: command, entrypoint: settings.entrypoint };
  const steps = settings.setup
    .map((step, i) => `printf '%s\\n' ${shellQuote(`+ setup ${i + 1}/${settings.setup.length}: ${step}`)} >&2; ( ${step} ) || exit $?`)
    .join("\n");
  const script = `${steps}\nexec "$@"`;
  const full = [...(settings.entrypoint ?? []), ...command];
  return { cmd: ["-c", script, "sandbox-setup", ...full], entrypoint: ["/bin/sh"] };
}

export function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** A create body as shown to people: secret values masked, the profile abbreviated. */
export function redactBody(body: CreateBody, plan: Pick<RunPlan, "secretEnvNames" | "seccomp" | "seccompHash">): CreateBody {
  const secret = new Set(plan.secretEnvNames);
  const Env = body.Env.map((entry) => {
    const name = entry.slice(0, entry.indexOf("="));
    return secret.has(name) ? `${name}=***` : entry;
  });
  const SecurityOpt = body.HostConfig.SecurityOpt.map((opt) =>
    opt.startsWith("seccomp=") && opt !== "seccomp=unconfined" && opt.slice("seccomp=".length).trimStart().startsWith("{")
      ? `seccomp=<${plan.seccomp} profile sha256:${plan.seccompHash} (${opt.length - 8} bytes)>`
      : opt,
  );
  return { ...body, Env, HostConfig: { ...body.HostConfig, SecurityOpt } };
}

/** The plan with its body redacted (redactBody). */
export function redactPlan(plan: RunPlan): RunPlan {
  return { ...plan, create: redactBody(plan.create, plan) };
}

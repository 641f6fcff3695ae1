import type { CreateBody, MountSpec } from "./engine-api.ts";
import { adaptCreateBody, type EngineFlavor } from "./engine-dialect.ts";
import { UsageError } from "./errors.ts";
import { workspaceMountFor, type RunPlan } from "./plan.ts";

/**
 * The one place where the body sent to POST /containers/create is decided.
 * The plan (plan.ts) holds every decision made from settings and host facts;
 * `finalBody` adds what is learned only at run time (the engine's dialect and
 * whether it can see our files, the guard's mounts, the egress proxy's
 * address) and returns the exact body. Nothing after it edits the body: the
 * session only sends it, and `--dry-run` prints the same function's result
 * for the facts it can know without side effects (run.ts says which it
 * assumed).
 */

/** What is known only once the engine answered and the run's resources exist. */
export interface RunFacts {
  /** The engine's dialect, from /_ping's Server header. */
  flavor: EngineFlavor;
  /** The engine runs on this machine (unix socket, named pipe), so it sees our paths. */
  engineLocal: boolean;
  /** Secret masks and protected paths (workspace/guard.ts), their sources the stand-ins in use. */
  guardMounts: readonly MountSpec[];
  /** The egress proxy, listening on the run's network gateway (egress/gateway.ts). */
  proxy?: { host: string; port: number } | undefined;
  /** A local Podman reads the seccomp profile from this file (engine-dialect.ts's seccompFilePath). */
  seccompPath?: string | undefined;
  /**
   * The image's /etc/passwd and /etc/group with the run's user in them
   * (core/identity.ts), as files on this machine, and that user's name.
   */
  identity?: { passwdFile: string; groupFile: string; user: string } | undefined;
  /** Review mode: the change set's upper and work folders, made by sandbox (workspace/change-store.ts). */
  review?: { upper: string; work: string } | undefined;
  /** Review mode: this machine's kernel has no overlay filesystem, so the engine could not mount one. */
  noOverlay?: boolean | undefined;
}

export interface FinalRun {
  body: CreateBody;
  /** How the workspace reaches the container, now settled. */
  workspaceMode: "bind" | "copy" | "review";
  /** Copy mode: workspace paths kept out of the copy both ways (masked or protected). */
  copyExcluded: string[];
  /** Review mode on an engine elsewhere: copy mode's mechanics, the changes going into the change set (engine/copy-review.ts). */
  reviewByCopy?: boolean;
}

/** Variables every common HTTP client reads (curl, wget, pip, npm, git, Go, Python, Node with a proxy agent). */
export const PROXY_VARS = ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"] as const;
const NO_PROXY_VARS = ["NO_PROXY", "no_proxy"] as const;
/** The container's own loopback is not egress. */
export const NO_PROXY_VALUE = "localhost,127.0.0.1,::1";

/** The run's writes go to a change set (docs/review.md): review mode, on a writable workspace. */
export function wantsReview(plan: Pick<RunPlan, "workspaceMode" | "workspaceReadOnly">): boolean {
  return plan.workspaceMode === "review" && !plan.workspaceReadOnly;
}

/** What --dry-run shows for the change set's folders, made only by a real run. */
export const ASSUMED_REVIEW = { upper: "<state>/sandbox/changes/<id>/upper", work: "<state>/sandbox/changes/<id>/work" };

export function finalBody(plan: RunPlan, facts: RunFacts): FinalRun {
  let mode = plan.workspaceMode === "auto" ? (facts.engineLocal ? "bind" : "copy") : plan.workspaceMode;
  // A read-only workspace makes no changes to review.
  if (mode === "review" && !wantsReview(plan)) mode = "bind";
  // An engine elsewhere cannot mount this machine's folder, nor one without overlayfs an overlay: the
  // workspace is copied in, and its changes into the change set.
  if (mode === "review" && facts.engineLocal && !facts.noOverlay) return reviewBody(plan, facts);
  const reviewByCopy = mode === "review";
  if (reviewByCopy) mode = "copy";
  const target = plan.create.WorkingDir;
  const inside = (m: MountSpec) => m.Target.startsWith(`${target.replace(/\/+$/, "")}/`);
  const relative = (m: MountSpec) => m.Target.slice(target.replace(/\/+$/, "").length + 1);

  const own = plan.create.HostConfig.Mounts.map((m) =>
    m.Type === "bind" && m.Source === plan.workspace && m.Target === target ? workspaceMountFor(mode, plan.workspace, target, m.ReadOnly === true) : m,
  );
  let mounts: MountSpec[];
  const copyExcluded: string[] = [];
  if (mode === "bind") mounts = [...own, ...facts.guardMounts];
  else {
    // A remote engine cannot see the bind sources inside the workspace: their
    // paths stay out of the copy both ways instead (a masked file is never
    // sent, a protected one never written back). The guard's read-write pins
    // matter only on a live bind mount; kept out, a pin would keep all of
    // `.git` out of the copy.
    mounts = [];
    for (const m of [...own, ...facts.guardMounts.filter((g) => g.ReadOnly === true)]) {
      if (m.Type === "bind" && inside(m)) copyExcluded.push(relative(m));
      else mounts.push(m);
    }
  }

  let body: CreateBody = { ...plan.create, HostConfig: { ...plan.create.HostConfig, Mounts: mounts } };
  if (facts.identity) body = withIdentity(body, facts.identity);
  if (facts.proxy) body = withEgressRuntime(body, facts.proxy);
  body = adaptCreateBody(body, { flavor: facts.flavor, seccompPath: facts.seccompPath });
  // Docker removes the container itself as it exits (as `docker run --rm`), which
  // saves a DELETE round trip. Not with --keep, nor in copy mode (the changes come
  // out after the exit), nor on Podman, whose AutoRemove and wait conditions differ:
  // there the session removes it.
  const autoRemove = !plan.keep && mode !== "copy" && facts.flavor === "docker";
  body = { ...body, HostConfig: { ...body.HostConfig, AutoRemove: autoRemove } };
  return { body, workspaceMode: mode, copyExcluded, ...(reviewByCopy ? { reviewByCopy } : {}) };
}

/**
 * Review mode (docs/review.md): the workspace is the lower layer of an
 * overlay the engine mounts at the target, the change set's folders its
 * upper and work layers, so the command sees the workspace as usual and
 * every write lands in the change set. Nothing is copied at start-up. Docker
 * mounts it as a `local` volume with overlay options (anonymous: removed with
 * the container, the folders stay); Podman 4's compat API drops volume
 * driver options for anonymous volumes, so there it is its own overlay bind
 * (`:O` with upperdir/workdir) in Binds, which takes no overlay options:
 * the kernel's defaults for redirect_dir and metacopy must be off there
 * (checked before the run: workspace/change-store.ts unsafeOverlayDefaults).
 * The guard's read-only mounts (masks, protected paths) go on top as in
 * bind mode; its read-write pins do not:
 * they are binds of the host's folders (`.git`), through which writes would
 * reach the workspace unreviewed.
 */
function reviewBody(plan: RunPlan, facts: RunFacts): FinalRun {
  const target = plan.create.WorkingDir;
  const layers = facts.review ?? ASSUMED_REVIEW;
  for (const path of [plan.workspace, layers.upper, layers.work]) {
    // Mount options are comma-separated and lowerdir is colon-separated: such a path cannot be named in them.
    if (/[,:\\\n]/.test(path)) {
      throw new UsageError(`--workspace-mode review cannot mount ${path}: its path holds a comma, colon or backslash, which overlay mount options cannot carry`, {
        hint: "Use --workspace-mode bind or copy for this folder, or move it to a path without those characters.",
      });
    }
  }
  // Off whatever the kernel's defaults: a renamed folder recorded as a redirect, or a file copied up
  // as metadata only, would leave its content in the lower layer, and the change set would lose it.
  const options = `lowerdir=${plan.workspace},upperdir=${layers.upper},workdir=${layers.work},redirect_dir=off,metacopy=off,index=off`;
  const isWorkspace = (m: MountSpec) => m.Type === "bind" && m.Source === plan.workspace && m.Target === target;
  const own = plan.create.HostConfig.Mounts.filter((m) => !isWorkspace(m));
  const guard = facts.guardMounts.filter((m) => m.ReadOnly === true);
  const overlay: MountSpec = { Type: "volume", Target: target, VolumeOptions: { DriverConfig: { Name: "local", Options: { type: "overlay", device: "overlay", o: options } } } };
  const podman = facts.flavor === "podman";
  let body: CreateBody = {
    ...plan.create,
    HostConfig: {
      ...plan.create.HostConfig,
      Mounts: podman ? [...own, ...guard] : [overlay, ...own, ...guard],
      ...(podman ? { Binds: [`${plan.workspace}:${target}:O,upperdir=${layers.upper},workdir=${layers.work}`] } : {}),
    },
  };
  if (facts.identity) body = withIdentity(body, facts.identity);
  if (facts.proxy) body = withEgressRuntime(body, facts.proxy);
  body = adaptCreateBody(body, { flavor: facts.flavor, seccompPath: facts.seccompPath });
  // As in bind mode: the engine's volume goes with the container; the change set's folders stay.
  body = { ...body, HostConfig: { ...body.HostConfig, AutoRemove: !plan.keep && !podman } };
  return { body, workspaceMode: "review", copyExcluded: [] };
}

/** The run's user by name: passwd and group mounted read-only, $USER and $LOGNAME set. */
function withIdentity(create: CreateBody, identity: NonNullable<RunFacts["identity"]>): CreateBody {
  const ours = new Map([
    ["USER", identity.user],
    ["LOGNAME", identity.user],
  ]);
  return {
    ...create,
    Env: [...create.Env.filter((e) => !ours.has(e.slice(0, e.indexOf("=")))), ...[...ours].map(([k, v]) => `${k}=${v}`)],
    HostConfig: {
      ...create.HostConfig,
      Mounts: [
        ...create.HostConfig.Mounts,
        { Type: "bind", Source: identity.passwdFile, Target: "/etc/passwd", ReadOnly: true },
        { Type: "bind", Source: identity.groupFile, Target: "/etc/group", ReadOnly: true },
      ],
    },
  };
}

/** The create body with the proxy variables (ours win) and DNS pointed at the gateway. */
export function withEgressRuntime(create: CreateBody, proxy: { host: string; port: number }): CreateBody {
  const url = `http://${proxy.host}:${proxy.port}`;
  const ours = new Map<string, string>([...PROXY_VARS.map((n) => [n, url] as const), ...NO_PROXY_VARS.map((n) => [n, NO_PROXY_VALUE] as const)]);
  const Env = [...create.Env.filter((e) => !ours.has(e.slice(0, e.indexOf("=")))), ...[...ours].map(([k, v]) => `${k}=${v}`)];
  return {
    ...create,
    Env,
    // The engine's embedded resolver forwards what it cannot answer to these servers. The gateway
    // is this host, where sandbox runs no DNS server, so lookups fail instead of leaking (names
    // are resolved by the proxy, on the host). A loopback address would not do: newer engines
    // forward loopback resolvers from the host's own namespace.
    HostConfig: { ...create.HostConfig, Dns: [proxy.host] },
  };
}

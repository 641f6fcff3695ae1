import type { CreateBody, MountSpec } from "./engine-api.ts";
import { adaptCreateBody, type EngineFlavor } from "./engine-dialect.ts";
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
}

export interface FinalRun {
  body: CreateBody;
  /** How the workspace reaches the container, now settled. */
  workspaceMode: "bind" | "copy";
  /** Copy mode: workspace paths kept out of the copy both ways (masked or protected). */
  copyExcluded: string[];
}

/** Variables every common HTTP client reads (curl, wget, pip, npm, git, Go, Python, Node with a proxy agent). */
export const PROXY_VARS = ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"] as const;
const NO_PROXY_VARS = ["NO_PROXY", "no_proxy"] as const;
/** The container's own loopback is not egress. */
export const NO_PROXY_VALUE = "localhost,127.0.0.1,::1";

export function finalBody(plan: RunPlan, facts: RunFacts): FinalRun {
  const mode = plan.workspaceMode === "auto" ? (facts.engineLocal ? "bind" : "copy") : plan.workspaceMode;
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
  return { body, workspaceMode: mode, copyExcluded };
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

import { SecurityError } from "./errors.ts";
import type { CreateBody } from "./engine-api.ts";

/**
 * The engines speak one API with a few dialects. A plan is written for
 * Docker; these pure functions rewrite the create body for the engine that
 * answered /_ping, so the same protections hold on both.
 */
export type EngineFlavor = "docker" | "podman";

/** Podman answers /_ping with `Server: Libpod/4.3.1 (linux)`; Docker with `Docker/20.10.24 (linux)`. */
export function engineFlavor(server: string | undefined): EngineFlavor {
  return /libpod|podman/i.test(server ?? "") ? "podman" : "docker";
}

export interface DialectInput {
  flavor: EngineFlavor;
  /**
   * Podman only: where the seccomp profile was written on the engine's host
   * (undefined when the engine is remote and no file can be placed there).
   */
  seccompPath?: string | undefined;
}

/** The `seccomp=` value of SecurityOpt when it carries a profile's JSON text. */
export function inlineSeccomp(create: CreateBody): string | undefined {
  const entry = create.HostConfig.SecurityOpt.find((o) => o.startsWith("seccomp="));
  const value = entry?.slice("seccomp=".length);
  return value !== undefined && value.trimStart().startsWith("{") ? value : undefined;
}

/**
 * Rewrite the create body for the engine:
 *  - Podman's compat API reads `seccomp=` as a file path (Docker takes the
 *    JSON itself, which is what the docker CLI sends): point it at the file.
 *  - Podman rejects the tmpfs options `uid=`/`gid=`; its `U` option chowns
 *    the mount to the container's user, which is the same user here.
 *  - Podman names its own nproc limit when the body names none, one a
 *    service may not be able to grant (podmanUlimits).
 */
export function adaptCreateBody(create: CreateBody, input: DialectInput): CreateBody {
  if (input.flavor === "docker") return create;
  let SecurityOpt = create.HostConfig.SecurityOpt;
  if (inlineSeccomp(create) !== undefined) {
    if (!input.seccompPath) {
      throw new SecurityError("this Podman engine is remote: it reads seccomp profiles only from files on its own host, so sandbox's profile cannot be applied", {
        hint: "Use a local Podman socket, or a Docker engine (which accepts the profile in the request).",
      });
    }
    SecurityOpt = SecurityOpt.map((o) => (o.startsWith("seccomp=") ? `seccomp=${input.seccompPath}` : o));
  }
  const Tmpfs: Record<string, string> = {};
  for (const [path, options] of Object.entries(create.HostConfig.Tmpfs)) Tmpfs[path] = podmanTmpfsOptions(options);
  return { ...create, HostConfig: { ...create.HostConfig, SecurityOpt, Tmpfs, Ulimits: podmanUlimits(create.HostConfig.Ulimits, create.HostConfig.PidsLimit) } };
}

/**
 * The nproc limit sandbox names for Podman. The kernel's default hard limit
 * is the host's memory / 256 KiB (4096 at 1 GiB), which root's services
 * inherit, so this fits a service on any host with 1 GiB or more.
 */
export const PODMAN_NPROC_LIMIT = 4096;

/**
 * Podman before 5.4 asks the runtime for nproc and nofile limits of 1048576
 * unless the request names them. Raising a hard limit above the runtime's own
 * needs CAP_SYS_RESOURCE, which root lacks in containers, CI runners and some
 * VMs: the container then fails to start ("error setting rlimit type 6:
 * operation not permitted"). The plan names nofile already (plan.ts
 * NOFILE_LIMIT); nproc is named here, for Podman only (Docker hands down its
 * daemon's limit, which it can always grant). The value never undercuts the
 * pids limit: the pids cgroup is the real cap on the container's processes,
 * while nproc counts all processes of the user (root is exempt).
 */
export function podmanUlimits(ulimits: CreateBody["HostConfig"]["Ulimits"], pidsLimit: number): CreateBody["HostConfig"]["Ulimits"] {
  if (ulimits.some((u) => u.Name === "nproc")) return ulimits;
  const nproc = Math.max(PODMAN_NPROC_LIMIT, pidsLimit);
  return [...ulimits, { Name: "nproc", Soft: nproc, Hard: nproc }];
}

/** `…,uid=1000,gid=1000` → `…,U`: Podman chowns the tmpfs to the container's user itself. */
export function podmanTmpfsOptions(options: string): string {
  const parts = options.split(",");
  const owned = parts.some((p) => p.startsWith("uid=") || p.startsWith("gid="));
  const kept = parts.filter((p) => !p.startsWith("uid=") && !p.startsWith("gid="));
  return (owned ? [...kept, "U"] : kept).join(",");
}


/**
 * Where a local Podman reads the run's seccomp profile: named by the hash of
 * its text, so runs share one file and a changed profile never overwrites one
 * in use (engine/dialect.ts writes it).
 */
export function seccompFilePath(dir: string, hash: string): string {
  return `${dir.replace(/\/+$/, "")}/seccomp-${hash}.json`;
}

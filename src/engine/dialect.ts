import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import { SecurityError } from "../core/errors.ts";
import type { CreateBody } from "../core/plan.ts";
import { isLocalAddress } from "./address.ts";
import type { EngineClient } from "./client.ts";

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
  return { ...create, HostConfig: { ...create.HostConfig, SecurityOpt, Tmpfs } };
}

/** `…,uid=1000,gid=1000` → `…,U`: Podman chowns the tmpfs to the container's user itself. */
export function podmanTmpfsOptions(options: string): string {
  const parts = options.split(",");
  const owned = parts.some((p) => p.startsWith("uid=") || p.startsWith("gid="));
  const kept = parts.filter((p) => !p.startsWith("uid=") && !p.startsWith("gid="));
  return (owned ? [...kept, "U"] : kept).join(",");
}

/**
 * Write the profile where a local Podman can read it, named by its hash so
 * runs share one file and a changed profile never overwrites one in use.
 */
export function writeSeccompFile(dir: string, json: string, hash: string): string {
  const path = join(dir, `seccomp-${hash}.json`);
  if (!existsSync(path)) {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const temp = `${path}.${randomBytes(6).toString("hex")}.tmp`;
    // World-readable: a rootful Podman service runs as root, a rootless one as the user.
    writeFileSync(temp, json, { mode: 0o644 });
    renameSync(temp, path);
  }
  return path;
}

/**
 * The create body for the engine this client negotiated with. A local
 * Podman gets the profile as a file under `seccompDir`; a remote one cannot.
 */
export function createBodyFor(engine: Pick<EngineClient, "server" | "address">, create: CreateBody, seccompDir: string | undefined): CreateBody {
  const flavor = engineFlavor(engine.server);
  if (flavor === "docker") return create;
  const json = inlineSeccomp(create);
  const local = isLocalAddress(engine.address);
  const seccompPath = json !== undefined && local && seccompDir ? writeSeccompFile(seccompDir, json, createHash("sha256").update(json).digest("hex")) : undefined;
  return adaptCreateBody(create, { flavor, seccompPath });
}

/**
 * Podman's init (catatonit) starts fine and only then fails to exec the
 * command: the container exits 1 after printing this line, where Docker's
 * start call fails with "executable file not found" (→ 127/126).
 */
const CATATONIT_EXEC_FAILURE = /^ERROR \(catatonit:\d+\): failed to exec pid1: (.+?)\r?\n?$/;

const CATATONIT_PREFIX = "ERROR (catatonit:";

export type InitExecFailure = "not-found" | "not-executable";

export function initExecFailure(firstLine: string): InitExecFailure | undefined {
  const reason = CATATONIT_EXEC_FAILURE.exec(firstLine)?.[1];
  if (reason === undefined) return undefined;
  if (/no such file|not a directory/i.test(reason)) return "not-found";
  if (/permission denied|exec format/i.test(reason)) return "not-executable";
  return undefined;
}

/**
 * Passes a stream through, except a first line that is catatonit's exec
 * failure: that is held back and remembered, so the caller reports it the
 * way Docker's start error is reported (one line, exit 127 or 126).
 */
export class InitFailureFilter extends Writable {
  failure: InitExecFailure | undefined;
  private head: Buffer | undefined = Buffer.alloc(0);

  constructor(private readonly target: NodeJS.WritableStream) {
    super();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    if (this.head === undefined) {
      forward(this.target, chunk, done);
      return;
    }
    this.head = Buffer.concat([this.head, chunk]);
    // Hold back only what can still become catatonit's line; anything else flows at once.
    const text = this.head.toString("latin1");
    const maybe = CATATONIT_PREFIX.startsWith(text) || text.startsWith(CATATONIT_PREFIX);
    if (maybe && this.head.indexOf(0x0a) < 0 && this.head.length < 512) {
      done();
      return;
    }
    this.release(done);
  }

  override _final(done: (err?: Error | null) => void): void {
    if (this.head !== undefined) this.release(done);
    else done();
  }

  private release(done: (err?: Error | null) => void): void {
    const head = this.head ?? Buffer.alloc(0);
    this.head = undefined;
    const newline = head.indexOf(0x0a);
    const line = head.subarray(0, newline < 0 ? head.length : newline + 1);
    this.failure = initExecFailure(line.toString("utf8"));
    const rest = this.failure ? head.subarray(line.length) : head;
    if (rest.length > 0) forward(this.target, rest, done);
    else done();
  }
}

function forward(target: NodeJS.WritableStream, data: Buffer, done: (err?: Error | null) => void): void {
  if (target.write(data)) done();
  else target.once("drain", () => done());
}

/**
 * An image name as the user wrote it. Podman files short names of local
 * images under "localhost/" (`sandbox-test/busybox:1` is listed as
 * `localhost/sandbox-test/busybox:1`); on Docker "localhost/" would be a
 * registry's name and is kept.
 */
export function displayImageName(image: string, flavor: EngineFlavor): string {
  return flavor === "podman" && image.startsWith("localhost/") ? image.slice("localhost/".length) : image;
}

import { NotManagedError, SandboxError, UsageError } from "../../core/errors.ts";
import { EXIT } from "../../core/exit-codes.ts";
import { isManaged } from "../../core/labels.ts";
import { renderPosture, summarisePosture } from "../../core/posture.ts";
import { defaultSeccompText } from "../../security/seccomp.ts";
import { inspectContainer } from "../../engine/containers.ts";
import { parseCommandLine } from "../args.ts";
import type { CommandContext } from "../context.ts";

export const INSPECT_HELP = `Usage: sandbox inspect [flags] <id|name>

Shows one container sandbox made: its state (status, exit code, OOM kill,
start, finish, duration), command, image, mounts, and its security posture
as the engine applied it: capabilities, seccomp profile (with its sha256,
checked against what sandbox recorded), whether ptrace is allowed (only
with --allow ptrace), read-only root, no-new-privileges, user,
memory/CPU/process limits, network, and the NAMES of the environment
variables sandbox set (never their values).

Containers not made by sandbox are refused (exit 1).

Flags:
      --json         Print the summary as JSON, for scripts
  -H, --host ADDR    Engine address (default DOCKER_HOST or /var/run/docker.sock)
  -h, --help         Show this help

Examples:
  sandbox inspect sandbox-npm-1a2b3c4d
  sandbox inspect 3f2a9c
  sandbox inspect --json sandbox-npm-1a2b3c4d | jq .security.seccomp
`;

const INSPECT_OPTIONS = {
  json: { type: "boolean" },
  host: { type: "string", short: "H" },
  help: { type: "boolean", short: "h" },
} as const;

/**
 * Engine container ids and names: anything else is refused before it reaches
 * a URL path, where `../` would name another endpoint.
 */
const REF = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** `sandbox inspect`: one of our containers, from the engine's point of view. */
export async function inspectCommand(argv: readonly string[], ctx: CommandContext): Promise<number> {
  const { values: flags, positionals } = parseCommandLine(argv, INSPECT_OPTIONS, "inspect");
  if (flags.help) {
    ctx.stdout.write(INSPECT_HELP);
    return 0;
  }
  if (positionals.length !== 1) {
    throw new UsageError(`sandbox inspect: ${positionals.length === 0 ? "name a container" : "one container at a time"}`, {
      hint: "Usage: sandbox inspect <id|name>; 'sandbox ps --all' lists sandbox's containers.",
    });
  }
  const ref = positionals[0] as string;
  if (!REF.test(ref)) {
    throw new UsageError(`sandbox inspect: "${ref}" is not a container id or name`, { hint: "'sandbox ps --all' lists sandbox's containers." });
  }

  const { engine } = await ctx.connect(flags.host);
  const details = await inspectContainer(engine, ref);
  if (details === undefined) {
    throw new SandboxError(`no such container: ${ref}`, { exitCode: EXIT.GENERAL, hint: "'sandbox ps --all' lists sandbox's containers." });
  }
  // The label on the inspected object decides, whatever the name looks like.
  if (!isManaged(details.Config.Labels)) {
    throw new NotManagedError(
      `${ref} is not a sandbox container (no io.sandbox.managed=true label); not showing it`,
      "sandbox only inspects containers it made. Use your engine's own tools (docker inspect) for others.",
    );
  }
  const now = Date.now();
  const posture = summarisePosture(details, { now, builtInSeccompHash: defaultSeccompText().hash });
  ctx.stdout.write(flags.json ? `${JSON.stringify(posture, null, 2)}\n` : renderPosture(posture, now));
  return 0;
}

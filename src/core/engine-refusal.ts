import type { Refusal } from "./errors.ts";

/**
 * An engine's refusal in sandbox's own words. The engine says what it
 * could not do in its terms, often naming a request nobody typed
 * (`POST /containers/<64 hex>/start: network x not found`), or nothing at all
 * after a colon. This turns the common refusals into one sentence that says
 * what was wrong and how to fix it, and keeps the engine's words as a second
 * line (`engine: ...`), since they are what a search or a bug report needs.
 * Pure: the messages are data (REFUSALS); the CLI renders the result
 * (cli/errors.ts); the engine client records the refusal (core/errors.ts
 * Refusal, on EngineError).
 */

export type { Refusal };

export interface RefusalWords {
  /** Which rule matched ("refused" for the generic one): for tests and logs. */
  id: string;
  /** One sentence: what was wrong, and how to fix it. */
  message: string;
  /** The engine's words, shown on the next line after `engine: `. */
  engine: string;
}

interface RefusalRule {
  id: string;
  /** Whether the rule applies; its groups feed `say`. */
  match(refusal: Refusal): RegExpExecArray | null;
  say(found: RegExpExecArray, refusal: Refusal): string;
}

const ANY = /^/;

/** Searches the engine's text. */
function inText(pattern: RegExp): RefusalRule["match"] {
  return (refusal) => pattern.exec(refusal.text);
}

/** The kernel's resource numbers (include/uapi/asm-generic/resource.h) runtimes print in their errors. */
const RLIMIT_NAMES: Readonly<Record<string, string>> = { "6": "nproc", "7": "nofile", NPROC: "nproc", NOFILE: "nofile" };
/** How a service's own limit is raised: its systemd unit's key, and the shell's ulimit flag. */
const RLIMIT_RAISE: Readonly<Record<string, string>> = { nproc: "LimitNPROC= in its systemd unit, or 'ulimit -u' before starting it", nofile: "LimitNOFILE= in its systemd unit, or 'ulimit -n' before starting it" };

/**
 * The refusals a newcomer meets, first match wins. Each message names the
 * thing that was wrong (as given to sandbox) and the way out.
 */
export const REFUSALS: readonly RefusalRule[] = [
  {
    // Whatever answers /_ping with an error is not an engine: a web server, a proxy, the wrong port.
    id: "not-an-engine",
    match: (r) => (r.path === "/_ping" ? ANY.exec("") : null),
    say: (_, r) => {
      const answer = r.status === undefined ? "with an error" : r.status < 300 ? `HTTP ${r.status} without the Api-Version header engines send` : `HTTP ${r.status}`;
      return `${r.address} does not look like a Docker or Podman engine (GET /_ping answered ${answer}); point DOCKER_HOST or --host at the engine's API socket or port`;
    },
  },
  {
    // Docker at start: "network x not found"; Podman at create: "unable to find network with name or ID x: network not found".
    id: "network-not-found",
    match: inText(/unable to find network with name or ID (\S+?):|\bnetwork (\S+) not found/),
    say: (m, r) => {
      const name = m[1] ?? m[2] ?? "";
      return `network ${JSON.stringify(name)} does not exist; create it with '${r.flavor} network create ${name}' or choose another with --network`;
    },
  },
  {
    // Docker at create: "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available".
    id: "cpus-above-host",
    match: inText(/Range of CPUs is from [\d.]+ to ([\d.]+), as there (?:are|is) only (\d+) CPUs? available/),
    say: (m) => cpusBeyondEngine(Number(m[2])),
  },
  {
    // Both engines, when the container starts (Podman: at attach): "unable to find user abc: no matching entries in passwd file".
    id: "unknown-user",
    match: inText(/unable to find (user|group) ([^:\s]+)/),
    say: (m) =>
      m[1] === "user"
        ? `user ${JSON.stringify(m[2])} does not exist in the image; give a numeric --user UID[:GID], or a name the image's /etc/passwd has`
        : `group ${JSON.stringify(m[2])} does not exist in the image; give a numeric --user UID:GID, or a group the image's /etc/group has`,
  },
  {
    // Docker: "No such image: x:1"; Podman: "x:1: image not known".
    id: "image-not-found",
    match: inText(/No such image: (\S+)|(\S+): image not known/),
    say: (m) => {
      const image = m[1] ?? m[2] ?? "";
      return `image ${JSON.stringify(image)} is not on this engine; pull it, load it with 'sandbox image load FILE', or choose another with --image`;
    },
  },
  {
    // Docker: 'Conflict. The container name "/x" is already in use by container ...'; Podman: 'the container name "x" is already in use by ...'.
    id: "name-in-use",
    match: inText(/container name "\/?([^"]+)" is already in use/),
    say: (m, r) => `a container named ${JSON.stringify(m[1])} already exists; choose another --name, or remove it ('${r.flavor} rm ${m[1]}')`,
  },
  {
    // Docker: "Minimum memory limit allowed is 6MB".
    id: "memory-too-low",
    match: inText(/Minimum memory limit allowed is (\S+)/),
    say: (m) => `--memory is below the engine's minimum of ${m[1]}; give more, such as --memory 512m`,
  },
  {
    // runc: "error setting rlimit type 6: operation not permitted"; crun: "setrlimit `RLIMIT_NPROC`: Operation not permitted".
    id: "rlimit",
    match: inText(/error setting rlimit type (\d+): operation not permitted|setrlimit `?RLIMIT_([A-Z]+)`?: operation not permitted/i),
    say: (m) => {
      const name = RLIMIT_NAMES[m[1] ?? m[2] ?? ""] ?? `rlimit ${m[1] ?? m[2]}`;
      const raise = RLIMIT_RAISE[name] ?? "in its systemd unit, or with ulimit before starting it";
      return `the engine could not set the container's ${name} limit: its runtime may not raise a limit above the engine service's own (no CAP_SYS_RESOURCE); raise the service's limit (${raise}); see docs/engines.md`;
    },
  },
];

/** sandbox's words for an engine's refusal; never a sentence that ends in a bare colon. */
export function describeRefusal(refusal: Refusal): RefusalWords {
  const engine = refusal.text !== "" ? refusal.text : `no message${refusal.status === undefined ? "" : ` (HTTP ${refusal.status})`}`;
  for (const rule of REFUSALS) {
    const found = rule.match(refusal);
    if (found) return { id: rule.id, message: rule.say(found, refusal), engine };
  }
  const status = refusal.status === undefined ? "" : ` (HTTP ${refusal.status})`;
  return { id: "refused", message: `the engine refused ${requestName(refusal.method, refusal.path)}${status}`, engine };
}

/**
 * The request as a person would name it: the common container calls in
 * words, anything else as method and path, with engine ids cut to the 12
 * characters `docker ps` shows.
 */
export function requestName(method: string, path: string): string {
  const short = path.replace(/\b([0-9a-f]{12})[0-9a-f]{52}\b/g, "$1");
  if (method === "POST" && short === "/containers/create") return "to create the container";
  const action = /^\/containers\/([^/]+)\/(start|attach|wait)$/.exec(short);
  if (method === "POST" && action) {
    const verb = { start: "to start", attach: "to attach to", wait: "to wait for" }[action[2] as "start" | "attach" | "wait"];
    return `${verb} container ${action[1]}`;
  }
  return `${method} ${short}`;
}

/**
 * `--cpus` above what the engine has. Docker refuses it at create; Podman
 * takes it and the limit then limits nothing, so sandbox refuses it on both
 * in these words (core/preflight.ts checkCpus).
 */
export function cpusBeyondEngine(available: number): string {
  return `--cpus asks for more CPUs than the engine has (${available}); choose --cpus ${available} or less`;
}

/** The raw one-line form kept in EngineError.message, for logs and code that reads the engine's words. */
export function refusalLine(refusal: Refusal): string {
  return refusal.text !== ""
    ? `the engine refused ${refusal.method} ${refusal.path}: ${refusal.text}`
    : `the engine refused ${refusal.method} ${refusal.path} (${refusal.status === undefined ? "no answer" : `HTTP ${refusal.status}`}, no message)`;
}

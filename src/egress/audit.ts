import { closeSync, constants, fsyncSync, lstatSync, openSync, readlinkSync, writeSync } from "node:fs";
import type { ClientValue } from "../core/credentials.ts";
import type { SandboxError } from "../core/errors.ts";
import { auditSymlinkError } from "../core/host-paths.ts";
import { printable } from "../core/printable.ts";

/**
 * The record of every connection the egress proxy saw.
 *
 * `--audit FILE` gets one JSON object per line, appended as each connection
 * ends (a denial at once, an allowed connection when it closes, so its byte
 * counts are final). Line by line rather than one write at the end, so the
 * record survives sandbox being killed and can be followed with `tail -f`
 * during a long agent session. The file is truncated when the run starts and
 * created with mode 0600: it names every host the command tried to reach.
 * Requests the proxy added a credential to get a line each of their own
 * (CredentialAuditEntry, `"kind": "credential"`), never with the value.
 *
 * In memory only counts are kept (not every entry), so a long session with
 * many connections does not grow the process.
 */

export type Decision = "allow" | "deny";

export interface AuditEntry {
  /** When the request arrived (ISO 8601). */
  time: string;
  /** CONNECT for tunnels, otherwise the HTTP method of a forwarded request. */
  method: string;
  host: string;
  port: number;
  /**
   * A request refused inside an intercepted tunnel (method and path rules
   * applied per request): its path, without the query. Such a request has
   * a line of its own besides its tunnel's.
   */
  path?: string;
  decision: Decision;
  /** Why: the matching allow-list entry, or what was refused. */
  reason: string;
  /** The upstream proxy the connection went through (`http://host:port`, never its credentials). */
  via?: string;
  /** The address dialled, when it got that far (through an upstream proxy: only for an IP address asked for). */
  address?: string;
  /** The TLS server name the client sent through a tunnel. */
  sni?: string;
  /** Bytes sent to the destination, and received from it. */
  bytesUp: number;
  bytesDown: number;
  durationMs: number;
  /** A failure after the decision (connection refused, reset, timeout). */
  error?: string;
}

/**
 * One request the proxy added a credential to (intercept.ts), as its own
 * line among the connections': `"kind": "credential"` tells it apart (the
 * connection entries have no `kind`). Names only, never the value.
 */
export interface CredentialAuditEntry {
  kind: "credential";
  time: string;
  host: string;
  port: number;
  method: string;
  /** Without the query. */
  path: string;
  /** The credential rule's name. */
  rule: string;
  /** What the client itself had sent in the rule's header: absent, the placeholder, or something else. */
  client: ClientValue;
}

export interface AuditSink {
  write(line: string): void;
  close(): void;
}

interface DenialGroup {
  target: string;
  reason: string;
  count: number;
}

export class AuditLog {
  allowed = 0;
  denied = 0;
  /** Requests a credential was added to. */
  credentials = 0;
  private readonly denials = new Map<string, DenialGroup>();
  private readonly sink: AuditSink | undefined;
  private readonly listeners: Array<(entry: AuditEntry) => void> = [];

  constructor(sink?: AuditSink) {
    this.sink = sink;
  }

  record(entry: AuditEntry): void {
    if (entry.decision === "allow") this.allowed++;
    else {
      this.denied++;
      const target = `${formatTarget(entry.host, entry.port)}`;
      const key = `${target}\n${entry.reason}`;
      const group = this.denials.get(key);
      if (group) group.count++;
      else this.denials.set(key, { target, reason: entry.reason, count: 1 });
    }
    this.sink?.write(`${JSON.stringify(entry)}\n`);
    for (const listener of this.listeners) listener(entry);
  }

  /** A request a credential was added to: a line in the file; the connection itself is recorded when it ends. */
  recordCredential(event: Omit<CredentialAuditEntry, "kind">): void {
    this.credentials++;
    const entry: CredentialAuditEntry = {
      kind: "credential",
      time: event.time,
      host: event.host,
      port: event.port,
      method: event.method,
      path: event.path,
      rule: event.rule,
      client: event.client,
    };
    this.sink?.write(`${JSON.stringify(entry)}\n`);
  }

  /** For tests and the benchmark: see entries as they are recorded. */
  onRecord(listener: (entry: AuditEntry) => void): void {
    this.listeners.push(listener);
  }

  /** Lines for stderr at the end of a run; empty when nothing was denied. */
  summary(auditPath?: string, max = 10): string[] {
    return denialSummary([...this.denials.values()], this.allowed, this.denied, auditPath, max);
  }

  close(): void {
    this.sink?.close();
  }
}

export function formatTarget(host: string, port: number): string {
  return `${host.includes(":") ? `[${host}]` : host}:${port}`;
}

/**
 * Pure: grouped denials → a heading and one line per destination and reason,
 * most frequent first. Targets and reasons carry what the command sent (a
 * host name, a CONNECT target, an SNI): their control characters are escaped
 * (core/printable.ts), so a request cannot write to the user's terminal.
 */
export function denialSummary(groups: readonly DenialGroup[], allowed: number, denied: number, auditPath: string | undefined, max = 10): string[] {
  if (denied === 0) return [];
  const sorted = [...groups].sort((a, b) => b.count - a.count || a.target.localeCompare(b.target));
  const lines = [`egress: denied ${denied} of ${allowed + denied} connection${allowed + denied === 1 ? "" : "s"}:`];
  for (const g of sorted.slice(0, max)) lines.push(`  ${printable(g.target)}: ${printable(g.reason)}${g.count > 1 ? ` (${g.count}×)` : ""}`);
  const shownPath = auditPath === undefined ? undefined : printable(auditPath);
  if (sorted.length > max) lines.push(`  … and ${sorted.length - max} more${shownPath ? ` (all in ${shownPath})` : " (record them all with --audit FILE)"}`);
  else if (shownPath) lines.push(`  full record: ${shownPath}`);
  return lines;
}

// Windows has no O_NOFOLLOW; there the CLI's check (cli/host-paths.ts) is what refuses a link.
const NOFOLLOW = constants.O_NOFOLLOW ?? 0;

/**
 * Opens (truncates) the audit file; each line is one write(2), so lines never
 * interleave. The path is opened as named, never through a symlink
 * (O_NOFOLLOW): a link planted there, e.g. by an earlier run's command in its
 * workspace, would otherwise have sandbox overwrite the link's target
 * (`~/.bashrc`) with lines that carry text the command chose. An existing
 * symlink is refused (a SandboxError, exit 125) before anything is written.
 * (A path inside the workspace is refused earlier, by the CLI.)
 */
export function openAuditFile(path: string): AuditSink {
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | NOFOLLOW, 0o600);
  } catch (err) {
    // O_NOFOLLOW fails with ELOOP on Linux (EMLINK on some BSDs): whatever the kernel said, a link is refused.
    if (isSymlink(path)) throw symlinkRefusal(path);
    throw err;
  }
  let open = true;
  return {
    write(line) {
      if (open) writeSync(fd, line);
    },
    close() {
      if (!open) return;
      open = false;
      try {
        fsyncSync(fd);
      } catch {
        // Not every file system (or device, /dev/null) can fsync; the lines are written either way.
      }
      closeSync(fd);
    },
  };
}

function isSymlink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

function symlinkRefusal(path: string): SandboxError {
  let target: string | undefined;
  try {
    target = readlinkSync(path);
  } catch {
    // Gone again: the refusal stands.
  }
  return auditSymlinkError(path, target);
}

import { SandboxError } from "./errors.ts";
import { EXIT } from "./exit-codes.ts";

/**
 * Credential rules: which requests the egress proxy adds a credential to,
 * in which header, in which form, and where the value comes from on the
 * host. Pure data and matching; resolving values is egress/credential-source.ts,
 * adding them to requests is egress/intercept.ts.
 *
 * The container never holds the value. Inside, the rule's placeholder
 * variables are set to PLACEHOLDER so tools believe they are configured
 * (Claude Code, gh, the OpenAI and Gemini SDKs refuse to start without a
 * key); the proxy then sets the header on every request to a matching host.
 *
 * The header is always set for a matching host, whatever the client sent:
 * the client's values for that header are dropped, the credential put in.
 * Replacing only a placeholder would let a request that carries no header,
 * or a different spelling of it, go out without the credential (a failure
 * that is hard to debug), and a command that brings a credential of its own
 * gains nothing from it being kept: it could only send it to the same host.
 * Other headers are left alone. The audit says whether the client sent the
 * placeholder, nothing, or something else (never the value).
 */

/** What the container sees instead of the value. Long enough for SDKs that check a key is non-empty, obviously not a key. */
export const PLACEHOLDER = "sandbox-proxy-managed";

/** Where a value comes from on the host; run there, by sandbox, never in the container. */
export type CredentialSource =
  | { readonly env: string }
  /** A file holding the value (surrounding whitespace dropped); `~/` is the user's home. */
  | { readonly file: string }
  /** A program and its arguments (no shell); its standard output is the value. */
  | { readonly command: readonly string[] };

/** How the header's value is made from the credential. */
export type HeaderFormat =
  /** `{value}` in the template is replaced, e.g. `Bearer {value}`, or `{value}` alone. */
  | { readonly kind: "template"; readonly template: string }
  /** HTTP Basic: `Basic base64(username:value)`, as git over https sends a token. */
  | { readonly kind: "basic"; readonly username: string };

export interface CredentialRule {
  /** Shown in the audit and in messages: lower-case letters, digits, dashes. */
  readonly name: string;
  /** `api.example.com`, or `*.example.com` for every name below example.com (not example.com itself). */
  readonly hosts: readonly string[];
  /** Lower-case header name, e.g. `authorization`, `x-api-key`. */
  readonly header: string;
  readonly format: HeaderFormat;
  /** Tried in order; the first that yields a value is used. */
  readonly sources: readonly CredentialSource[];
  /** Variables set to PLACEHOLDER in the container when the rule is in use. */
  readonly placeholders: readonly string[];
}

/** A credential could not be read, or its value cannot go into a header. Exit 125: nothing was started. */
export class CredentialError extends SandboxError {
  constructor(message: string, hint: string) {
    super(message, { exitCode: EXIT.SANDBOX_FAILED, hint });
  }
}

const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
const TOKEN = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/;
const VISIBLE_ASCII = /^[\x20-\x7e]*$/;

/** Headers the proxy itself owns (framing, routing, the connection): a credential in one would break or smuggle requests. */
const RESERVED_HEADERS = new Set(["host", "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer", "keep-alive", "expect"]);

/** What is wrong with a rule (from a config file), or undefined. */
export function ruleProblem(rule: CredentialRule): string | undefined {
  if (!NAME.test(rule.name)) return `credential rule name "${rule.name}" must be lower-case letters, digits and dashes`;
  const where = `credential rule ${rule.name}`;
  if (rule.hosts.length === 0) return `${where}: no hosts`;
  for (const host of rule.hosts) {
    if (hostPatternBase(host) === undefined) return `${where}: "${host}" is not a host name or *.name pattern (IP addresses and ports are not accepted)`;
  }
  if (!TOKEN.test(rule.header)) return `${where}: "${rule.header}" is not a lower-case header name`;
  if (RESERVED_HEADERS.has(rule.header) || rule.header.startsWith("proxy-")) return `${where}: the proxy cannot set the ${rule.header} header`;
  const format = rule.format;
  if (format.kind === "template") {
    if (format.template.split("{value}").length !== 2) return `${where}: the format must contain {value} exactly once`;
    if (!VISIBLE_ASCII.test(format.template)) return `${where}: the format may hold printable ASCII only`;
  } else if (!/^[\x21-\x39\x3b-\x7e]+$/.test(format.username)) return `${where}: the Basic user name must be printable ASCII without ':' or spaces`;
  if (rule.sources.length === 0) return `${where}: no source for the value`;
  for (const source of rule.sources) {
    if ("env" in source && !ENV_NAME.test(source.env)) return `${where}: "${source.env}" is not a variable name`;
    if ("file" in source && source.file.trim() === "") return `${where}: an empty file path`;
    if ("command" in source && (source.command.length === 0 || source.command[0] === "")) return `${where}: an empty command`;
  }
  for (const name of rule.placeholders) if (!ENV_NAME.test(name)) return `${where}: "${name}" is not a variable name`;
  return undefined;
}

/** `api.example.com` → itself, `*.example.com` → `example.com`; undefined for anything else. */
export function hostPatternBase(pattern: string): string | undefined {
  const base = pattern.startsWith("*.") ? pattern.slice(2) : pattern;
  const labels = base.split(".");
  if (base.length > 253 || labels.length < 2 || !labels.every((l) => LABEL.test(l))) return undefined;
  // A numeric last label is an IPv4 address in some spelling, never a name.
  if (/^(\d+|0x[0-9a-f]*)$/.test(labels[labels.length - 1] ?? "")) return undefined;
  return base;
}

/** `host` is lower-case without a trailing dot (as the proxy normalises it). */
export function hostMatches(pattern: string, host: string): boolean {
  if (pattern.startsWith("*.")) return host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1;
  return host === pattern;
}

/** The rule that adds a credential to requests for `host`: the first that matches. */
export function ruleForHost(rules: readonly CredentialRule[], host: string): CredentialRule | undefined {
  return rules.find((rule) => rule.hosts.some((pattern) => hostMatches(pattern, host)));
}

/**
 * Whether an earlier rule in use already claims one of `rule`'s host
 * patterns. One credential per request: with both ANTHROPIC_API_KEY and
 * CLAUDE_CODE_OAUTH_TOKEN on the host, the first built-in wins, and only its
 * placeholder is set inside. Rules are taken in order, so a rule listed
 * before the built-ins overrides them for its hosts.
 */
export function isShadowed(used: readonly CredentialRule[], rule: CredentialRule): boolean {
  return used.some((earlier) => earlier.hosts.some((h) => rule.hosts.includes(h)));
}

/** A rule's variables: those it sets to the placeholder and those it reads its value from. */
export function ruleVariables(rule: CredentialRule): string[] {
  return [...new Set([...rule.placeholders, ...rule.sources.flatMap((s) => ("env" in s ? [s.env] : []))])];
}

/** The container's variables for the rules in use: each placeholder name set to PLACEHOLDER. */
export function placeholderEnv(rules: readonly CredentialRule[]): Record<string, string> {
  return Object.fromEntries(rules.flatMap((rule) => rule.placeholders.map((name) => [name, PLACEHOLDER])));
}

/** The names the run's CA may vouch for (its nameConstraints): each pattern's base. */
export function permittedNames(rules: readonly CredentialRule[]): string[] {
  return [...new Set(rules.flatMap((rule) => rule.hosts.map((h) => hostPatternBase(h) ?? h)))];
}

/** Why a value cannot go into a header (a line break would start a header of the client's choosing), or undefined. */
export function valueProblem(value: string): string | undefined {
  if (value === "") return "it is empty";
  if (!/^[\x21-\x7e]+$/.test(value)) return "it holds spaces, line breaks or characters outside printable ASCII";
  return undefined;
}

/** The header's value for a credential. */
export function headerValue(format: HeaderFormat, value: string): string {
  // btoa takes the ASCII both parts are checked to be (ruleProblem, valueProblem).
  if (format.kind === "basic") return `Basic ${btoa(`${format.username}:${value}`)}`;
  return format.template.replace("{value}", () => value);
}

/** What the client itself had sent in the rule's header, for the audit. */
export type ClientValue = "absent" | "placeholder" | "other";

export function classifyClientValue(sent: readonly string[]): ClientValue {
  if (sent.length === 0) return "absent";
  return sent.every((v) => v.includes(PLACEHOLDER) || basicCarriesPlaceholder(v)) ? "placeholder" : "other";
}

function basicCarriesPlaceholder(value: string): boolean {
  const m = /^basic\s+([A-Za-z0-9+/=]+)$/i.exec(value.trim());
  if (!m) return false;
  try {
    return atob(m[1] ?? "").includes(PLACEHOLDER);
  } catch {
    return false;
  }
}

/** A source as messages name it; never its value. */
export function describeSource(source: CredentialSource): string {
  if ("env" in source) return `$${source.env}`;
  if ("file" in source) return `file ${source.file}`;
  return `\`${source.command.join(" ")}\``;
}

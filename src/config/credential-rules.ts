import * as v from "valibot";
import { ruleProblem, type CredentialRule, type CredentialSource, type HeaderFormat } from "../core/credentials.ts";
import { describeValue, expected } from "./errors.ts";
import { envName, hostFile, isPlainObject, list, section, text } from "./values.ts";

/**
 * `credentials:` in the user's own config (never `.sandbox.yml`: a
 * repository naming a header and a source could have the proxy read any
 * file or run any program of the host's and send the result wherever its
 * hosts point): credential rules of the user's own, for hosts the built-ins
 * do not know (docs/credentials.md, "Your own rules").
 *
 * ```yaml
 * credentials:
 *   - name: corp-api
 *     hosts: [api.corp.example, "*.svc.corp.example"]
 *     header: authorization
 *     format: "Bearer {value}"     # the default is "{value}"; "basic" with username: for HTTP Basic
 *     env: CORP_TOKEN               # and/or file: ~/.config/corp/token, command: [corp-cli, token]
 *     placeholder: CORP_TOKEN       # the default: the env source's name; [] for none
 * ```
 *
 * Sources are tried in the order env, file, command. The checks are the
 * built-ins' own (core/credentials.ts, ruleProblem), run on the written
 * rule so a mistake is reported at its key path.
 */

export interface WrittenCredentialRule {
  name: string;
  hosts: string | string[];
  header: string;
  format?: string;
  username?: string;
  env?: string;
  file?: string;
  command?: string | string[];
  placeholder?: string | string[];
}

const oneOrMore = (item: v.GenericSchema<unknown, string>, what: string) =>
  v.custom<string | string[]>(
    (input) => (typeof input === "string" ? v.is(item, input) : Array.isArray(input) && input.length > 0 && input.every((i) => v.is(item, i))),
    expected(what),
  );

const ruleName = text("a rule name of lower-case letters, digits and dashes such as corp-api", /^[a-z0-9][a-z0-9-]{0,62}$/, 63);
const hostPattern = text("a host name or *.domain", /^[!-~]+$/, 256);
const headerName = text("a lower-case header name such as authorization or x-api-key", /^[!#$%&'*+.^_`|~0-9a-z-]+$/, 128);
const command = v.custom<string | string[]>(
  (input) =>
    (typeof input === "string" && input.trim() !== "" && !input.includes("\0")) ||
    (Array.isArray(input) && input.length > 0 && input.every((a) => typeof a === "string" && !a.includes("\0")) && input[0] !== ""),
  expected('a program and its arguments, such as [gh, auth, token] or "gh auth token" (no shell)'),
);
const placeholder = v.custom<string | string[]>(
  (input) => (typeof input === "string" ? v.is(envName, input) : Array.isArray(input) && input.every((i) => v.is(envName, i))),
  expected("a variable name such as CORP_TOKEN, or a list of them ([] for none)"),
);

/** The rule sandbox uses for a written one. */
export function credentialRuleOf(written: WrittenCredentialRule): CredentialRule {
  const sources: CredentialSource[] = [];
  if (written.env !== undefined) sources.push({ env: written.env });
  if (written.file !== undefined) sources.push({ file: written.file });
  if (written.command !== undefined) sources.push({ command: typeof written.command === "string" ? written.command.trim().split(/\s+/) : [...written.command] });
  const format: HeaderFormat =
    written.format === "basic" ? { kind: "basic", username: written.username ?? "" } : { kind: "template", template: written.format ?? "{value}" };
  const placeholders = written.placeholder === undefined ? (written.env !== undefined ? [written.env] : []) : typeof written.placeholder === "string" ? [written.placeholder] : [...written.placeholder];
  return {
    name: written.name,
    hosts: typeof written.hosts === "string" ? [written.hosts] : [...written.hosts],
    header: written.header,
    format,
    sources,
    placeholders,
  };
}

/** Problems that need the whole rule: which key they belong to, and what is wrong. */
function wholeRuleProblem(written: WrittenCredentialRule): { key: string; message: string } | undefined {
  if (written.env === undefined && written.file === undefined && written.command === undefined) {
    return { key: "env", message: "a credential rule needs a source: env (a variable of yours), file (a file holding the value) or command (a program printing it)" };
  }
  if (written.format === "basic" && written.username === undefined) return { key: "username", message: 'format "basic" needs a username (the value is the password)' };
  if (written.format !== "basic" && written.username !== undefined) return { key: "username", message: 'a username is for format "basic" only' };
  const problem = ruleProblem(credentialRuleOf(written));
  if (problem === undefined) return undefined;
  // ruleProblem names the rule; the key path already does.
  const message = problem.replace(/^credential rule [a-z0-9-]+: /, "");
  const key = /format|{value}|printable ASCII only/.test(message) ? "format" : /Basic user/.test(message) ? "username" : /host name|hosts/.test(message) ? "hosts" : /header/.test(message) ? "header" : "name";
  return { key, message };
}

export const credentialRule = v.pipe(
  section({
    name: ruleName,
    hosts: oneOrMore(hostPattern, "a host name such as api.corp.example or *.corp.example, or a list of them"),
    header: headerName,
    format: v.optional(text('a header value with {value} in it, such as "Bearer {value}", or basic', /^[ -~]+$/, 512)),
    username: v.optional(text("a user name for HTTP Basic such as x-access-token", /^[!-9;-~]+$/, 256)),
    env: v.optional(envName),
    file: v.optional(hostFile),
    command: v.optional(command),
    placeholder: v.optional(placeholder),
  }),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed || !isPlainObject(dataset.value)) return;
    const written = dataset.value as WrittenCredentialRule;
    const problem = wholeRuleProblem(written);
    if (!problem) return;
    const value = (written as unknown as Record<string, unknown>)[problem.key];
    addIssue({ message: problem.message, input: value, path: [{ type: "object", origin: "value", input: written as unknown as Record<string, unknown>, key: problem.key, value }] });
  }),
);

/** The list: rule names are unique (the audit and messages name rules by them). */
export const credentialRules = v.pipe(
  list(credentialRule, "credential rules"),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    const seen = new Set<string>();
    for (const [index, rule] of (dataset.value as WrittenCredentialRule[]).entries()) {
      if (seen.has(rule.name)) {
        addIssue({
          message: `a second rule named ${describeValue(rule.name)}; each rule needs a name of its own`,
          input: rule.name,
          path: [{ type: "array", origin: "value", input: dataset.value as unknown[], key: index, value: rule }],
        });
      }
      seen.add(rule.name);
    }
  }),
);

import { accessSync, constants, statSync } from "node:fs";
import { delimiter, isAbsolute, join, resolve } from "node:path";
import { BUILTIN_CREDENTIALS } from "../core/builtin-credentials.ts";
import { credentialRuleStatuses, type CredentialRuleStatus, type SourceCheck } from "../core/credential-status.ts";
import { CredentialError, describeSource, type CredentialRule, type CredentialSource } from "../core/credentials.ts";
import { readSource, type SourceContext } from "../egress/credential-source.ts";
import { credentialRules } from "./credentials.ts";

/**
 * The credential rules and where their values are on this host, for
 * `sandbox doctor` and `sandbox config show` (core/credential-status.ts).
 * Variables and files are read as a run reads them (the value is dropped at
 * once, never shown); a `command:` source is never run here, only looked up
 * on PATH: running `gh auth token` or a password manager's helper to print a
 * report could be slow, ask for a password or have effects of its own, and
 * a run starts it anyway when it needs the value.
 */
export async function credentialStatuses(custom: readonly CredentialRule[], customSource: string, host: SourceContext): Promise<CredentialRuleStatus[]> {
  const rules = credentialRules(custom);
  const cache = new Map<string, Promise<SourceCheck>>();
  const checks = new Map<CredentialRule, SourceCheck[]>();
  for (const rule of rules) {
    const each: SourceCheck[] = [];
    for (const source of rule.sources) {
      const key = JSON.stringify(source);
      let pending = cache.get(key);
      if (!pending) {
        pending = checkSource(source, host);
        cache.set(key, pending);
      }
      each.push(await pending);
    }
    checks.set(rule, each);
  }
  return credentialRuleStatuses(rules, checks, {
    userRules: new Set(custom.map((r) => r.name)),
    builtIns: new Set(BUILTIN_CREDENTIALS.map((r) => r.name)),
    userSource: customSource,
  });
}

async function checkSource(source: CredentialSource, host: SourceContext): Promise<SourceCheck> {
  if ("command" in source) {
    const program = source.command[0] ?? "";
    return onPath(program, host) ? { kind: "command" } : { kind: "missing", why: `${program} is not on PATH` };
  }
  try {
    const read = await readSource(source, host);
    return "value" in read ? { kind: "value" } : { kind: "missing", why: read.missing };
  } catch (err) {
    if (err instanceof CredentialError) return { kind: "unusable", why: err.message };
    return { kind: "unusable", why: `${describeSource(source)}: ${(err as Error).message}` };
  }
}

/** Whether `program` names an executable file: as a path (relative to cwd), or found in PATH as a shell would. */
function onPath(program: string, host: SourceContext): boolean {
  if (program === "") return false;
  const candidates = program.includes("/") ? [isAbsolute(program) ? program : resolve(host.cwd, program)] : (host.env.PATH ?? "").split(delimiter).filter(Boolean).map((dir) => join(dir, program));
  return candidates.some((path) => {
    try {
      accessSync(path, constants.X_OK);
      return statSync(path).isFile();
    } catch {
      return false;
    }
  });
}

import * as v from "valibot";
import type { DeclarationTable } from "./declare.ts";
import { SETTINGS } from "./settings.ts";
import { mapping, OWN_CONFIG, section, WORKSPACE_FILE_NAME } from "./values.ts";

export { GLOBAL_CONFIG_HINT, WORKSPACE_FILE_NAME } from "./values.ts";

/**
 * Two files, two trust levels, both schemas derived from the setting
 * declarations (settings.ts):
 *
 * - the user's config (~/.config/sandbox/config.yaml) is the user's own and
 *   may set anything, including settings that weaken the sandbox;
 * - `.sandbox.yml` comes with the repository being worked on, i.e. from
 *   whoever wrote that code, so it may only set what a declaration allows
 *   there (an image, setup steps, literal env values, a network and a
 *   timeout): nothing that loosens the sandbox or reads the host.
 *
 * Every mapping is strict: a misspelt key is an error, never silently ignored.
 * Values keep the form the user wrote (`"4g"`, `"30m"`); the declarations'
 * transforms normalise them when settings are resolved (resolve.ts).
 */

type Entries = Record<string, v.GenericSchema<unknown, unknown>>;

/** The user config's schema: one strict section per first key segment (`security.pids` -> security: { pids }). */
export function globalConfigSchema(table: DeclarationTable) {
  const top: Entries = {};
  const sections = new Map<string, Entries>();
  for (const declaration of Object.values(table)) {
    const key = declaration.config?.key;
    if (key === undefined || declaration.config === undefined) continue;
    const [head, leaf] = key.split(".", 2) as [string, string | undefined];
    if (leaf === undefined) top[head] = v.optional(declaration.config.schema);
    else sections.set(head, { ...sections.get(head), [leaf]: v.optional(declaration.config.schema) });
  }
  for (const [head, entries] of sections) top[head] = v.optional(section(entries));
  return section(top);
}

/** `.sandbox.yml`'s schema: the keys some declaration lets a repository set, nothing else. */
export function workspaceFileSchema(table: DeclarationTable) {
  const entries: Entries = {};
  for (const declaration of Object.values(table)) {
    if (declaration.workspace) entries[declaration.workspace.key] = v.optional(declaration.workspace.schema);
  }
  const accepted = Object.keys(entries);
  return mapping(entries, (key) => refusedKey(key, accepted));
}

export const GlobalConfigSchema = globalConfigSchema(SETTINGS);
export const WorkspaceFileSchema = workspaceFileSchema(SETTINGS);

/** A validated user config: sections of written values (see GlobalConfigSchema). */
// Loose on purpose: the shape is the declarations', and values are read through them (resolve.ts).
export type GlobalConfig = { readonly [key: string]: any };
/** A validated `.sandbox.yml`. */
export type WorkspaceFile = { readonly [key: string]: any };

/**
 * Keys that would weaken the sandbox or reach into the host. Refused with a
 * pointer to where they may be set, rather than a bare "unknown key".
 */
const LOOSENING_KEYS = new Set([
  "agents",
  "cap_add",
  "capabilities",
  "container",
  "cpus",
  "credentials",
  "devices",
  "egress",
  "images",
  "memory",
  "mounts",
  "paths",
  "pids",
  "privileged",
  "read_only_root",
  "security",
  "seccomp",
  "security_opt",
  "user",
  "volumes",
  "workspace",
]);

function refusedKey(key: string, accepted: readonly string[]): string {
  if (LOOSENING_KEYS.has(key)) {
    return `not allowed in ${WORKSPACE_FILE_NAME}: a repository cannot loosen the sandbox; set it in ${OWN_CONFIG} or with a flag`;
  }
  return `unknown key (${WORKSPACE_FILE_NAME} accepts only ${accepted.join(", ")})`;
}

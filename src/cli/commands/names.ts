/**
 * The names of the commands, in the order help and completion list them. Its
 * own module so the registry (index.ts) and the completion command, which the
 * registry loads, can both read it without importing each other.
 */
export const COMMAND_NAMES = ["run", "version", "config", "trust", "cache", "changes", "diff", "apply", "discard", "ps", "inspect", "prune", "doctor", "image", "completion"] as const;

export type CommandName = (typeof COMMAND_NAMES)[number];

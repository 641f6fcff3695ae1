/**
 * Consent for a repository's `.sandbox.yml` (docs/config.md): the file is
 * obeyed only once the user trusted that exact content for that workspace
 * (`sandbox trust`), like direnv's `allow` or mise's `trust`. The record
 * lives in the user's state, out of every container's reach:
 * `${XDG_STATE_HOME:-~/.local/state}/sandbox/trust.json`. Pure: the CLI
 * reads and writes the file (cli/trust-store.ts).
 *
 * One record per workspace (its real path), holding the sha256 of the
 * content trusted: trusting again replaces it, so a changed file is
 * untrusted again until the user looks at it anew.
 */

export const TRUST_STORE_VERSION = 1;
export const TRUST_FILE_NAME = "trust.json";

export interface TrustRecord {
  /** The workspace's real path. */
  readonly workspace: string;
  /** sha256 (hex) of the `.sandbox.yml` content trusted. */
  readonly sha256: string;
  /** When it was trusted (ISO 8601). */
  readonly trusted: string;
}

export interface TrustStore {
  readonly version: number;
  readonly records: readonly TrustRecord[];
}

/**
 * What the user said about a workspace file: trusted (this content),
 * changed (another content was trusted), untrusted (never trusted), or
 * flag (`--trust-workspace-config`: obeyed for this one command).
 */
export type TrustState = "trusted" | "changed" | "untrusted" | "flag";

export const EMPTY_TRUST_STORE: TrustStore = { version: TRUST_STORE_VERSION, records: [] };

const SHA256 = /^[0-9a-f]{64}$/;

/** The store's text -> the store (EMPTY for no file); an Error whose message says what is wrong. */
export function parseTrustStore(text: string | undefined): TrustStore {
  if (text === undefined || text.trim() === "") return EMPTY_TRUST_STORE;
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new Error(`it is not JSON (${(err as Error).message})`);
  }
  if (data === null || typeof data !== "object" || Array.isArray(data)) throw new Error("it is not a JSON object");
  const { version, records } = data as { version?: unknown; records?: unknown };
  if (version !== TRUST_STORE_VERSION) throw new Error(`its version is ${JSON.stringify(version)}, not ${TRUST_STORE_VERSION}`);
  if (!Array.isArray(records)) throw new Error('"records" is not a list');
  const out: TrustRecord[] = [];
  for (const [i, record] of records.entries()) {
    const r = record as Partial<Record<keyof TrustRecord, unknown>> | null;
    if (r === null || typeof r !== "object" || typeof r.workspace !== "string" || !r.workspace.startsWith("/") || typeof r.sha256 !== "string" || !SHA256.test(r.sha256)) {
      throw new Error(`record ${i + 1} is not {workspace: an absolute path, sha256: 64 hex digits, trusted: a date}`);
    }
    out.push({ workspace: r.workspace, sha256: r.sha256, trusted: typeof r.trusted === "string" ? r.trusted : "" });
  }
  return { version: TRUST_STORE_VERSION, records: out };
}

export function serializeTrustStore(store: TrustStore): string {
  const records = [...store.records].sort((a, b) => (a.workspace < b.workspace ? -1 : a.workspace > b.workspace ? 1 : 0));
  return `${JSON.stringify({ version: TRUST_STORE_VERSION, records }, null, 2)}\n`;
}

export function trustRecord(store: TrustStore, workspace: string): TrustRecord | undefined {
  return store.records.find((r) => r.workspace === workspace);
}

/**
 * Whether the workspace file with this content is to be obeyed: trusted when
 * the user trusted exactly this content for exactly this workspace, or for
 * this command with the flag; changed when another content was trusted;
 * untrusted otherwise.
 */
export function trustState(store: TrustStore, workspace: string, sha256: string, flag = false): TrustState {
  const record = trustRecord(store, workspace);
  if (record?.sha256 === sha256) return "trusted";
  if (flag) return "flag";
  return record ? "changed" : "untrusted";
}

/** Whether a state means the file is obeyed. */
export function obeyed(state: TrustState): boolean {
  return state === "trusted" || state === "flag";
}

/** The store with this content trusted for this workspace (replacing what was trusted there before). */
export function withTrust(store: TrustStore, workspace: string, sha256: string, now: Date): TrustStore {
  return { version: TRUST_STORE_VERSION, records: [...store.records.filter((r) => r.workspace !== workspace), { workspace, sha256, trusted: now.toISOString() }] };
}

/** The store without the workspace's record, and whether there was one. */
export function withoutTrust(store: TrustStore, workspace: string): { store: TrustStore; removed: TrustRecord | undefined } {
  const removed = trustRecord(store, workspace);
  return { store: { version: TRUST_STORE_VERSION, records: store.records.filter((r) => r.workspace !== workspace) }, removed };
}

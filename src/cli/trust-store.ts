import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { ConfigError } from "../core/errors.ts";
import { defaultStateDir } from "../core/persistence.ts";
import { parseTrustStore, serializeTrustStore, TRUST_FILE_NAME, trustState, type TrustState, type TrustStore } from "../core/trust.ts";

/**
 * The user's consent records for repositories' `.sandbox.yml` files
 * (core/trust.ts): `${XDG_STATE_HOME:-~/.local/state}/sandbox/trust.json`,
 * mode 0600 in a 0700 folder, replaced atomically (written beside, then
 * renamed) so a crash or a second `sandbox trust` never leaves half a file.
 * No container mounts this file: agent state lives in folders below it.
 */

export function trustStorePath(env: Readonly<Record<string, string | undefined>>, homeDir: string): string {
  return `${defaultStateDir(env as Record<string, string | undefined>, homeDir)}/${TRUST_FILE_NAME}`;
}

export function readTrustStore(path: string): TrustStore {
  let text: string | undefined;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT" && (err as NodeJS.ErrnoException).code !== "ENOTDIR") {
      throw new ConfigError(`cannot read the trust records ${path}: ${(err as Error).message}`, { hint: "Check the file's permissions." });
    }
  }
  try {
    return parseTrustStore(text);
  } catch (err) {
    throw new ConfigError(`the trust records ${path} are damaged: ${(err as Error).message}`, {
      hint: `Remove the file and trust your workspaces again with 'sandbox trust'.`,
    });
  }
}

export function writeTrustStore(path: string, store: TrustStore): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp-${randomBytes(4).toString("hex")}`;
  try {
    // "wx": never through, nor over, something already there.
    writeFileSync(tmp, serializeTrustStore(store), { mode: 0o600, flag: "wx" });
    chmodSync(tmp, 0o600);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** The real path a workspace is recorded under (the path itself when it cannot be resolved). */
export function realWorkspace(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/**
 * The config loader's question (config/load.ts `trust`): did the user trust
 * this content of the workspace's `.sandbox.yml`? `flag` is
 * --trust-workspace-config. The store is read only when a file exists.
 */
export function workspaceTrust(
  env: Readonly<Record<string, string | undefined>>,
  homeDir: string,
  workspace: string,
  flag: boolean,
): (sha256: string) => TrustState {
  return (sha256) => {
    let store: TrustStore;
    try {
      store = readTrustStore(trustStorePath(env, homeDir));
    } catch (err) {
      // The flag obeys the file whatever the records say.
      if (flag) return "flag";
      throw err;
    }
    return trustState(store, realWorkspace(workspace), sha256, flag);
  };
}

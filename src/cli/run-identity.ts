import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { writeOnce } from "./write-once.ts";
import type { RunFacts } from "../core/container-body.ts";
import { identityFor } from "../core/identity.ts";
import type { EngineClient } from "../engine/client.ts";
import { readImageFiles } from "../engine/image-files.ts";

/**
 * The passwd and group files a run mounts (core/identity.ts), kept under
 * sandbox's state folder: the image's own files cached by image ID (an image
 * never changes under its ID, so each is read once, through a container that
 * is never started), and the merged files named by their content, so runs
 * share them and none is rewritten while another run reads it.
 */

type ImageAccounts = { passwd?: string | undefined; group?: string | undefined };

function cachePath(stateDir: string, imageId: string): string {
  return `${stateDir}/images/${imageId.replace(/^sha256:/, "").replace(/[^a-f0-9]/gi, "")}.accounts.json`;
}

function cachedAccounts(stateDir: string, imageId: string): ImageAccounts | undefined {
  try {
    return JSON.parse(readFileSync(cachePath(stateDir, imageId), "utf8")) as ImageAccounts;
  } catch {
    return undefined;
  }
}

function identityFiles(stateDir: string, user: string, accounts: ImageAccounts, write: boolean): RunFacts["identity"] {
  const identity = identityFor(user, accounts.passwd, accounts.group);
  if (!identity) return undefined;
  const path = (text: string, kind: string) => `${stateDir}/identity/${createHash("sha256").update(text).digest("hex").slice(0, 32)}.${kind}`;
  const passwdFile = path(identity.passwd, "passwd");
  const groupFile = path(identity.group, "group");
  if (write) {
    // World-readable: the container's user is not the file's owner when --user differs.
    writeOnce(passwdFile, identity.passwd, { file: 0o644, dir: 0o700 });
    writeOnce(groupFile, identity.group, { file: 0o644, dir: 0o700 });
  }
  return { passwdFile, groupFile, user: identity.user };
}

/** For a run: reads the image's accounts on first use of an image, writes the merged files. */
export async function runIdentity(engine: EngineClient, image: { ref: string; id: string }, user: string, stateDir: string): Promise<RunFacts["identity"]> {
  if (identityFor(user, undefined, undefined) === undefined) return undefined;
  let accounts = cachedAccounts(stateDir, image.id);
  if (!accounts) {
    const files = await readImageFiles(engine, image.ref, ["/etc/passwd", "/etc/group"]);
    accounts = { passwd: files.get("/etc/passwd"), group: files.get("/etc/group") };
    writeOnce(cachePath(stateDir, image.id), JSON.stringify(accounts), { file: 0o600, dir: 0o700 });
  }
  return identityFiles(stateDir, user, accounts, true);
}

/** For --dry-run: only what the cache already knows (it creates nothing); undefined when the image was never seen. */
export function knownIdentity(imageId: string, user: string, stateDir: string): RunFacts["identity"] {
  const accounts = cachedAccounts(stateDir, imageId);
  return accounts ? identityFiles(stateDir, user, accounts, false) : undefined;
}

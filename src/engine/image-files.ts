import { LABELS } from "../core/labels.ts";
import type { EngineClient } from "./client.ts";
import { createContainer, removeContainer } from "./containers.ts";
import { readTar } from "./tar.ts";

/** Larger files are not what sandbox reads from images (passwd, group, a package.json). */
const MAX_FILE_BYTES = 1024 * 1024;

/**
 * Small files from an image, read through the archive API of a container
 * that is created and never started: nothing of the image runs, and the
 * container is removed before this returns. A path the image lacks (or that
 * is not a regular file) reads as undefined.
 */
export async function readImageFiles(engine: EngineClient, image: string, paths: readonly string[]): Promise<Map<string, string | undefined>> {
  const id = await createContainer(engine, undefined, {
    Image: image,
    // Never started; an entrypoint that cannot exist makes sure of it.
    Entrypoint: ["/sandbox-never-started"],
    Cmd: [],
    Labels: { [LABELS.managed]: "true", "io.sandbox.helper": "image-files" },
    NetworkDisabled: true,
    HostConfig: { NetworkMode: "none" },
  });
  try {
    const out = new Map<string, string | undefined>();
    for (const path of paths) out.set(path, await readFile(engine, id, path));
    return out;
  } finally {
    await removeContainer(engine, id, { force: true }).catch(() => {});
  }
}

async function readFile(engine: EngineClient, id: string, path: string): Promise<string | undefined> {
  const res = await engine.stream({ method: "GET", path: `/containers/${id}/archive`, query: { path }, ok: [200], expected: [404] });
  if (res.statusCode === 404) {
    res.resume();
    return undefined;
  }
  for await (const entry of readTar(res)) {
    if (entry.type !== "file" || entry.size > MAX_FILE_BYTES) {
      res.destroy();
      return undefined;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of entry.body) chunks.push(chunk);
    res.destroy();
    return Buffer.concat(chunks).toString("utf8");
  }
  return undefined;
}

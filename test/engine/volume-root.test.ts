import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readTar } from "../../src/engine/tar.ts";
import { rootEntryName, splitTarget } from "../../src/engine/volume-root.ts";
import { copyIgnore, workspaceTar, type Manifest } from "../../src/engine/workspace-copy.ts";

describe("the volume's top folder (engine/volume-root.ts)", () => {
  test("Docker gets a root entry named '/', which its untar applies to the target; Podman '.'", () => {
    expect(rootEntryName("docker")).toBe("/");
    expect(rootEntryName("podman")).toBe(".");
  });

  test("the workspace archive starts with that root entry, carrying the user and the workspace's mode", async () => {
    const ws = mkdtempSync(join(tmpdir(), "sandbox-volume-root-"));
    try {
      const manifest: Manifest = new Map();
      const tar = workspaceTar({ workspace: ws, target: "/work", ignore: copyIgnore(undefined, []), uid: 1000, gid: 1001, rootName: "/" }, manifest);
      const chunks: Buffer[] = [];
      for await (const chunk of tar) chunks.push(chunk as Buffer);
      const all = Buffer.concat(chunks);
      // The raw name field: exactly "/".
      expect(all.subarray(0, 2).toString("latin1")).toBe("/\0");
      async function* once(): AsyncGenerator<Buffer> {
        yield all;
      }
      for await (const entry of readTar(once())) {
        expect(entry).toMatchObject({ type: "dir", uid: 1000, gid: 1001, mode: 0o700 });
        break;
      }
    } finally {
      rmSync(ws, { recursive: true, force: true });
    }
  });

  test("Podman's second upload goes to the target's parent, naming its last segment", () => {
    expect(splitTarget("/work")).toEqual({ parent: "/", name: "work" });
    expect(splitTarget("/home/dev/src/")).toEqual({ parent: "/home/dev", name: "src" });
    expect(splitTarget("/")).toBeUndefined();
  });
});

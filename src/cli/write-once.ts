import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

/**
 * Write a file named by its content (or by what it is derived from) once:
 * runs share it, and none is rewritten while another run reads it. Written
 * to a temp name and renamed, so a reader never sees half a file.
 */
export function writeOnce(path: string, text: string, modes: { file: number; dir: number }): string {
  if (existsSync(path)) return path;
  mkdirSync(dirname(path), { recursive: true, mode: modes.dir });
  const temp = `${path}.${randomBytes(6).toString("hex")}.tmp`;
  writeFileSync(temp, text, { mode: modes.file });
  renameSync(temp, path);
  return path;
}

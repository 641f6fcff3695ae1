/**
 * Shared by the review-mode integration tests (test/integration/review*.test.ts):
 * a workspace with a state folder of its own, and the kept change sets.
 */
import { mkdirSync, mkdtempSync, realpathSync } from "node:fs";
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runSandbox, TEST_IMAGE } from "./sandbox.ts";

/** `sandbox run` in review mode, no network. */
export const REVIEW_RUN = ["run", "--image", TEST_IMAGE, "--network", "none", "--workspace-mode", "review"];

/** A folder for one test file's workspaces (remove it in afterAll). */
export function reviewRoot(prefix: string): string {
  return realpathSync(mkdtempSync(join(tmpdir(), prefix)));
}

let n = 0;
/** A workspace under root with `files` under p/, and a state folder of its own. */
export function reviewWorkspace(root: string, files: Record<string, string> = {}): { ws: string; env: Record<string, string> } {
  const ws = join(root, `t${n++}`);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(ws, "p", name, ".."), { recursive: true });
    writeFileSync(join(ws, "p", name), text);
  }
  mkdirSync(join(ws, "p"), { recursive: true });
  return { ws, env: { XDG_STATE_HOME: join(root, `state${n}`) } };
}

export interface KeptSet {
  id: string;
  changes: number;
  workspace: string;
  command: string[];
  interrupted?: boolean;
}

/** `sandbox changes --json`. */
export async function keptSets(env: Record<string, string>): Promise<KeptSet[]> {
  const r = await runSandbox(["changes", "--json"], { env });
  if (r.code !== 0) throw new Error(`sandbox changes: ${r.stderr}`);
  return JSON.parse(r.stdout.toString()) as KeptSet[];
}

import type { Duplex } from "node:stream";
import type { EngineClient } from "./client.ts";

/**
 * Attach before start so not a byte of output is lost. The socket is
 * hijacked: reads carry the container's output, writes go to its stdin, and
 * ending our side closes the container's stdin (StdinOnce).
 */
export async function attachContainer(engine: EngineClient, id: string, opts: { stdin: boolean }): Promise<Duplex> {
  return engine.hijack({
    method: "POST",
    path: `/containers/${id}/attach`,
    query: { stream: true, stdin: opts.stdin, stdout: true, stderr: true },
  });
}

import { EngineError } from "../core/errors.ts";
import type { IncomingMessage } from "node:http";
import type { EngineClient } from "./client.ts";
import type { ContainerDetails, EngineCreateBody } from "../core/engine-api.ts";

export type { ContainerDetails } from "../core/engine-api.ts";


export interface ContainerSummary {
  Id: string;
  Names: string[];
  Image: string;
  Command: string;
  Created: number;
  State: string;
  Status: string;
  Labels: Record<string, string> | null;
  SizeRw?: number;
}

export async function createContainer(engine: EngineClient, name: string | undefined, body: EngineCreateBody): Promise<string> {
  const reply = await engine.json<{ Id: string; Warnings?: string[] | null }>({
    method: "POST",
    path: "/containers/create",
    query: { name },
    body,
    ok: [200, 201],
  });
  return reply.body.Id;
}

export async function startContainer(engine: EngineClient, id: string): Promise<void> {
  await engine.json({ method: "POST", path: `/containers/${id}/start`, ok: [204, 304] });
}

export interface WaitResult {
  StatusCode: number;
  Error?: { Message?: string } | null;
}

export async function waitContainer(engine: EngineClient, id: string): Promise<WaitResult> {
  const reply = await engine.json<WaitResult>({ method: "POST", path: `/containers/${id}/wait`, ok: [200] });
  return reply.body;
}

export interface RemovalWait {
  /** The exit, once the engine has removed the container. */
  exit: Promise<WaitResult>;
  cancel(): void;
}

/**
 * POST /containers/{id}/wait?condition=removed for a container created with
 * AutoRemove, as `docker run --rm` does. The engine sends the response head
 * once the wait is registered, so a start after that cannot race it; the exit
 * comes later on the same response. Some proxies hold a head back until the
 * body starts, which would stall the run: after `headWithinMs` we go on
 * without it (the request reached the engine long before).
 */
export async function waitForRemoval(engine: EngineClient, id: string, headWithinMs = 250): Promise<RemovalWait> {
  let res: IncomingMessage | undefined;
  let cancelled = false;
  // Untimed: docker-modem's timer would otherwise run until that held-back head.
  const head = engine.stream({ method: "POST", path: `/containers/${id}/wait`, query: { condition: "removed" }, ok: [200], untimed: true }).then((r) => {
    res = r;
    if (cancelled) r.destroy();
    return r;
  });
  const exit = head.then((r) => readWaitResult(r, id));
  exit.catch(() => {});
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([head.catch(() => {}), new Promise((resolve) => (timer = setTimeout(resolve, headWithinMs)))]);
  clearTimeout(timer);
  return {
    exit,
    cancel: () => {
      cancelled = true;
      res?.destroy();
    },
  };
}

function readWaitResult(res: IncomingMessage, id: string): Promise<WaitResult> {
  return new Promise<WaitResult>((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on("data", (c: Buffer) => chunks.push(c));
    res.once("error", reject);
    res.once("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      try {
        const body = JSON.parse(text) as WaitResult;
        if (typeof body.StatusCode !== "number") throw new Error("no StatusCode");
        resolve(body);
      } catch {
        reject(new EngineError(`the engine's answer to waiting for container ${id.slice(0, 12)} was not understood: ${text.slice(0, 200)}`));
      }
    });
    res.once("close", () => reject(new EngineError(`the engine closed the wait for container ${id.slice(0, 12)} without an exit status`)));
  });
}

/**
 * Whether the engine recorded an OOM kill for a container that is already
 * gone (AutoRemove), from the engine's buffer of recent events: `since=0`
 * replays them, and the container's `destroy` marks the end of its story
 * (its `oom` would come before). Undefined when that cannot be told within
 * `timeoutMs` (an engine without the buffer, or one too busy to still hold it).
 */
export async function oomKilledFromEvents(engine: EngineClient, id: string, timeoutMs = 2000): Promise<boolean | undefined> {
  const filters = { type: ["container"], container: [id], event: ["oom", "destroy"] };
  let res: IncomingMessage;
  try {
    res = await engine.stream({ method: "GET", path: "/events", query: { since: "0", filters }, ok: [200] });
  } catch {
    return undefined;
  }
  return new Promise((resolve) => {
    let oom = false;
    let rest = "";
    const done = (answer: boolean | undefined) => {
      clearTimeout(timer);
      res.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    res.on("data", (chunk: Buffer) => {
      const lines = (rest + chunk.toString("utf8")).split("\n");
      rest = lines.pop() ?? "";
      for (const line of lines) {
        let event: { status?: string; Action?: string };
        try {
          event = JSON.parse(line) as typeof event;
        } catch {
          continue;
        }
        const action = event.Action ?? event.status;
        if (action === "oom") oom = true;
        else if (action === "destroy") return done(oom);
      }
    });
    res.once("error", () => done(undefined));
    res.once("close", () => done(undefined));
  });
}

/** Remove, tolerating "already gone" so cleanup paths can run twice safely. */
export async function removeContainer(engine: EngineClient, id: string, opts: { force?: boolean; volumes?: boolean } = {}): Promise<boolean> {
  const reply = await engine.json({
    method: "DELETE",
    path: `/containers/${id}`,
    query: { force: opts.force ?? true, v: opts.volumes ?? true },
    ok: [200, 204],
    expected: [404, 409],
  });
  if (reply.status === 409) {
    // Removal already in progress (e.g. AutoRemove raced us): the engine finishes it.
    return false;
  }
  return reply.status !== 404;
}

/** Send a signal; a container that already stopped is not an error here. */
export async function killContainer(engine: EngineClient, id: string, signal: string): Promise<void> {
  await engine.json({ method: "POST", path: `/containers/${id}/kill`, query: { signal }, ok: [200, 204], expected: [404, 409, 500] });
}

/**
 * SIGTERM, then SIGKILL after `graceSeconds`; the engine answers once the
 * container stopped. Untimed: docker-modem's connection timer (10 s) runs
 * until the answer, so a command that ignores SIGTERM would have the request
 * cut off at the very moment of the SIGKILL.
 */
export async function stopContainer(engine: EngineClient, id: string, graceSeconds: number): Promise<void> {
  await engine.json({ method: "POST", path: `/containers/${id}/stop`, query: { t: graceSeconds }, ok: [200, 204, 304], expected: [404], untimed: true });
}

export async function resizeContainer(engine: EngineClient, id: string, rows: number, columns: number): Promise<void> {
  await engine.json({ method: "POST", path: `/containers/${id}/resize`, query: { h: rows, w: columns }, ok: [200, 201, 204], expected: [404, 409, 500] });
}

export async function inspectContainer(engine: EngineClient, id: string): Promise<ContainerDetails | undefined> {
  try {
    const reply = await engine.json<ContainerDetails>({ method: "GET", path: `/containers/${id}/json`, ok: [200], expected: [404] });
    return reply.status === 404 ? undefined : reply.body;
  } catch (err) {
    if (goneMidRemoval(err)) return undefined;
    throw err;
  }
}

/**
 * Podman, while it removes a container (AutoRemove, or a removal under
 * way), may still resolve its name and then answer 500 "... does not exist
 * in database: no such container": the container is gone, as a 404 says.
 */
function goneMidRemoval(err: unknown): boolean {
  return err instanceof EngineError && err.statusCode === 500 && /\bno such container\b/.test(err.refusal?.text ?? "");
}

export async function listContainers(
  engine: EngineClient,
  opts: { all?: boolean; labels?: string[]; size?: boolean } = {},
): Promise<ContainerSummary[]> {
  const filters = opts.labels && opts.labels.length > 0 ? { label: opts.labels } : undefined;
  const reply = await engine.json<ContainerSummary[]>({
    method: "GET",
    path: "/containers/json",
    query: { all: opts.all ?? false, size: opts.size ?? false, filters },
  });
  if (!Array.isArray(reply.body)) throw new EngineError("the engine answered GET /containers/json with something that is not a list");
  return reply.body;
}

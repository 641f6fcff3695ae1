import { EngineError } from "../core/errors.ts";
import type { EngineClient } from "./client.ts";

/** The subset of GET /containers/{id}/json that sandbox reads. */
export interface ContainerDetails {
  Id: string;
  Name: string;
  Created: string;
  Path: string;
  Args: string[];
  State: {
    Status: string;
    Running: boolean;
    ExitCode: number;
    OOMKilled: boolean;
    Error?: string;
    StartedAt?: string;
    FinishedAt?: string;
  };
  Config: {
    Image: string;
    Cmd?: string[] | null;
    Entrypoint?: string[] | null;
    Env?: string[] | null;
    Labels?: Record<string, string> | null;
    User?: string;
    WorkingDir?: string;
    Tty?: boolean;
  };
  HostConfig: Record<string, unknown> & {
    CapAdd?: string[] | null;
    CapDrop?: string[] | null;
    SecurityOpt?: string[] | null;
    ReadonlyRootfs?: boolean;
    Memory?: number;
    MemorySwap?: number;
    NanoCpus?: number;
    PidsLimit?: number | null;
    NetworkMode?: string;
    Init?: boolean | null;
  };
  Mounts?: Array<{ Type: string; Source?: string; Destination: string; RW: boolean; Name?: string }>;
  Image: string;
}

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

export async function createContainer(engine: EngineClient, name: string | undefined, body: unknown): Promise<string> {
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

export async function stopContainer(engine: EngineClient, id: string, graceSeconds: number): Promise<void> {
  await engine.json({ method: "POST", path: `/containers/${id}/stop`, query: { t: graceSeconds }, ok: [200, 204, 304], expected: [404] });
}

export async function resizeContainer(engine: EngineClient, id: string, rows: number, columns: number): Promise<void> {
  await engine.json({ method: "POST", path: `/containers/${id}/resize`, query: { h: rows, w: columns }, ok: [200, 201, 204], expected: [404, 409, 500] });
}

export async function inspectContainer(engine: EngineClient, id: string): Promise<ContainerDetails | undefined> {
  const reply = await engine.json<ContainerDetails>({ method: "GET", path: `/containers/${id}/json`, ok: [200], expected: [404] });
  return reply.status === 404 ? undefined : reply.body;
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

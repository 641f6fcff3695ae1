/**
 * Image archives without the docker CLI: `docker save` and `docker load` are
 * GET /images/{name}/get and POST /images/load on the Engine API. This is how
 * images reach an air-gapped host.
 */
import { randomBytes } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { closeSync, createReadStream, createWriteStream, fsyncSync, openSync, renameSync, rmSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { Transform, Writable, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { EngineError, ImageNotFoundError, UsageError } from "../core/errors.ts";
import { EngineClient } from "./client.ts";
import type { Connected } from "./connect.ts";
import { inspectImage, readJsonLines, type ProgressEvent } from "./images.ts";

/** Called as bytes move; `total` when it is known (a file's size) or estimated (an image's size). */
export type BytesListener = (done: number, total: number | undefined) => void;

/**
 * A client for the same engine without the connection timeout: the engine
 * answers a save only once it has exported every layer, and a load only once
 * it has read and unpacked the whole archive. For a large image either takes
 * far longer than the 10 s an ordinary request may wait for its first byte.
 */
export function transferClient(connected: Connected): EngineClient {
  const { choice, engine } = connected;
  const client = new EngineClient({
    address: choice.address,
    ...(choice.tls ? { tls: choice.tls } : {}),
    ...(choice.ssh ? { ssh: choice.ssh } : {}),
    connectTimeoutMs: 0, // docker-modem: 0 means no timer
  });
  if (engine.apiVersion) client.pinVersion(engine.apiVersion);
  return client;
}

function counter(onBytes: BytesListener, total: number | undefined): Transform {
  let done = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, callback) {
      done += chunk.length;
      onBytes(done, total);
      callback(null, chunk);
    },
  });
}

export interface SaveResult {
  bytes: number;
}

/**
 * Export images into one archive. To a file it is written to a temporary
 * file beside it, flushed to disk and renamed: FILE is either the old one or
 * the complete new archive, never a truncated one. `file` "-" streams to `out`.
 */
export async function saveImages(
  engine: EngineClient,
  images: readonly string[],
  file: string,
  opts: { out?: Writable; onBytes?: BytesListener; signal?: AbortSignal } = {},
): Promise<SaveResult> {
  let estimate = 0;
  for (const image of images) {
    const found = await inspectImage(engine, image);
    if (!found) {
      throw new ImageNotFoundError(`image "${image}" is not on this engine, so it cannot be saved`, {
        hint: "Check the name and tag: only images already on this engine can be saved (pull or build it there first).",
      });
    }
    estimate += found.Size ?? 0;
  }
  const res = await abortable(
    images.length === 1
      ? engine.stream({ method: "GET", path: `/images/${encodeURIComponent(images[0] as string)}/get` })
      : engine.stream({ method: "GET", path: "/images/get", query: { names: [...images] } }),
    opts.signal,
  );
  let bytes = 0;
  const count = counter((done, total) => {
    bytes = done;
    opts.onBytes?.(done, total);
  }, estimate || undefined);
  const signal = opts.signal ? { signal: opts.signal } : {};

  if (file === "-") {
    const out = opts.out;
    if (!out) throw new UsageError("sandbox image save: no output stream for '-'");
    // Into stdout without ending it (the caller still owns it), honouring its back-pressure.
    const into = new Writable({
      write(chunk: Buffer, _enc, callback) {
        if (out.write(chunk)) callback();
        else out.once("drain", () => callback());
      },
    });
    try {
      await pipeline(res, count, into, signal);
    } catch (err) {
      res.destroy();
      throw transferError(err, "writing the archive to standard output");
    }
    return { bytes };
  }

  const temp = join(dirname(file), `.${basename(file)}.sandbox-${randomBytes(4).toString("hex")}.tmp`);
  try {
    await pipeline(res, count, createWriteStream(temp, { flags: "wx", mode: 0o644 }), signal);
    // Durable before it becomes visible under its name.
    const fd = openSync(temp, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, file);
  } catch (err) {
    res.destroy();
    rmSync(temp, { force: true });
    throw transferError(err, `writing ${file}`);
  }
  return { bytes };
}

export interface LoadResult {
  /** "name:tag" for each tagged image, "sha256:…" for an untagged one. */
  images: string[];
  bytes: number;
}

/** Send an archive (a file, or `input` for "-") to POST /images/load and report what it held. */
export async function loadImages(
  engine: EngineClient,
  file: string,
  opts: { input?: Readable; onBytes?: BytesListener; signal?: AbortSignal } = {},
): Promise<LoadResult> {
  let source: Readable;
  let total: number | undefined;
  if (file === "-") {
    if (!opts.input) throw new UsageError("sandbox image load: no input stream for '-'");
    source = opts.input;
  } else {
    let size: number;
    try {
      const st = statSync(file);
      if (!st.isFile()) throw new UsageError(`sandbox image load: ${file} is not a file`, { hint: "Give the archive written by 'sandbox image save' or 'docker save'." });
      size = st.size;
    } catch (err) {
      if (err instanceof UsageError) throw err;
      throw new UsageError(`sandbox image load: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
        hint: "Give the path of an archive written by 'sandbox image save' or 'docker save'.",
      });
    }
    total = size;
    source = createReadStream(file);
  }
  let bytes = 0;
  const body = source.pipe(
    counter((done, t) => {
      bytes = done;
      opts.onBytes?.(done, t);
    }, total),
  );
  source.on("error", (err) => body.destroy(err));
  const abort = () => {
    source.destroy();
    body.destroy(new Error("aborted"));
  };
  opts.signal?.addEventListener("abort", abort, { once: true });

  const images: string[] = [];
  try {
    // quiet=1: no per-layer progress bars from the engine; the byte count above is ours.
    const res = await engine.stream({
      method: "POST",
      path: "/images/load",
      query: { quiet: true },
      file: body,
      headers: { "Content-Type": "application/x-tar", ...(total !== undefined ? { "Content-Length": String(total) } : {}) },
    });
    await readJsonLines<ProgressEvent>(res, (event) => {
      if (event.error || event.errorDetail?.message) throw new EngineError(`the engine could not load ${file === "-" ? "the archive" : file}: ${event.errorDetail?.message ?? event.error}`, { hint: "Is it an image archive from 'sandbox image save' or 'docker save'?" });
      for (const line of (event.stream ?? "").split("\n")) {
        // Docker: "Loaded image: name:tag" / "Loaded image ID: sha256:…"; Podman: "Loaded image(s): a,b".
        const m = /^Loaded image(?:\(s\))?(?: ID)?: (.+)$/.exec(line.trim());
        if (m) images.push(...(m[1] as string).split(",").map((s) => s.trim()).filter(Boolean));
      }
    }, opts.signal);
  } catch (err) {
    // Podman rejects a bad archive with HTTP 500 where Docker sends an error line: one message for both.
    if (err instanceof EngineError && err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode !== 404) {
      throw new EngineError(`the engine could not load ${file === "-" ? "the archive" : file}: ${err.message.replace(/^the engine refused [^:]+: /, "")}`, {
        statusCode: err.statusCode,
        hint: "Is it an image archive from 'sandbox image save' or 'docker save'?",
        cause: err,
      });
    }
    throw transferError(err, `loading ${file === "-" ? "standard input" : file}`);
  } finally {
    opts.signal?.removeEventListener("abort", abort);
  }
  return { images, bytes };
}

/**
 * The engine sends nothing until it has exported every layer (minutes for a
 * big image): an interrupt must not wait for that. A response that arrives
 * after the abort is closed unread.
 */
function abortable(pending: Promise<IncomingMessage>, signal: AbortSignal | undefined): Promise<IncomingMessage> {
  if (!signal) return pending;
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    pending.then(
      (res) => {
        signal.removeEventListener("abort", onAbort);
        if (signal.aborted) res.destroy();
        else resolve(res);
      },
      (err) => {
        signal.removeEventListener("abort", onAbort);
        reject(err);
      },
    );
  });
}

function transferError(err: unknown, what: string): Error {
  if (err instanceof EngineError || err instanceof UsageError || err instanceof ImageNotFoundError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e.name === "AbortError") return err as Error;
  return new EngineError(`${what} failed: ${e.code ?? e.message}`, {
    hint: e.code === "ENOSPC" ? "The disk is full: free some space or write the archive elsewhere." : "Check the path, free disk space and that the engine is still running.",
    cause: err,
  });
}

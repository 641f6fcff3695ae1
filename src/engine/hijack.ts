import net from "node:net";
import tls from "node:tls";
import type { Duplex } from "node:stream";
import type { EngineAddress } from "./address.ts";
import type { TlsMaterial } from "./transport-types.ts";

/**
 * A hijacked HTTP connection spoken by hand over node:net / node:tls.
 *
 * Why not docker-modem's `hijack`: it relies on the HTTP client's `upgrade`
 * event, which Bun's node:http (and so the compiled binary) does not deliver
 * for client requests; the request just hangs. Writing the request line
 * ourselves works the same on Node, Bun and Deno, and lets us send an empty
 * body, which Podman needs (it treats any attach body as stdin).
 */
export interface HijackTarget {
  address: EngineAddress;
  tls?: TlsMaterial;
  /** A ready byte stream to the engine, for transports node:net cannot dial (ssh's dial-stdio channel). */
  dial?: () => Promise<Duplex>;
}

export class HijackError extends Error {
  readonly statusCode: number | undefined;
  constructor(message: string, statusCode?: number) {
    super(message);
    this.statusCode = statusCode;
  }
}

export async function hijackRequest(target: HijackTarget, pathWithQuery: string, timeoutMs = 10_000): Promise<Duplex> {
  const socket = target.dial ? await target.dial() : await connect(target, timeoutMs);
  const host = target.address.kind === "tcp" ? `${target.address.host}:${target.address.port}` : "docker";
  socket.write(
    `POST ${pathWithQuery} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: sandbox\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n`,
  );
  return readResponseHead(socket);
}

function connect(target: HijackTarget, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const { address } = target;
    let socket: net.Socket;
    const onError = (err: Error) => {
      clearTimeout(timer);
      reject(err);
    };
    const ready = () => {
      clearTimeout(timer);
      socket.off("error", onError);
      resolve(socket);
    };
    if (address.kind === "unix" || address.kind === "npipe") {
      socket = net.connect({ path: address.socketPath }, ready);
    } else if (address.kind === "tcp" && address.tls) {
      socket = tls.connect(
        {
          host: address.host,
          port: address.port,
          ca: target.tls?.ca,
          cert: target.tls?.cert,
          key: target.tls?.key,
          rejectUnauthorized: target.tls?.verify ?? true,
          servername: net.isIP(address.host) ? undefined : address.host,
        },
        ready,
      );
    } else if (address.kind === "tcp") {
      socket = net.connect({ host: address.host, port: address.port }, ready);
    } else {
      reject(new Error(`hijacked connections over ${address.kind} need a dial function`));
      return;
    }
    const timer = setTimeout(() => {
      socket.destroy();
      reject(Object.assign(new Error(`connection timed out after ${timeoutMs}ms`), { code: "ETIMEDOUT" }));
    }, timeoutMs);
    socket.once("error", onError);
  });
}

/** Read up to the end of the response head; leftover bytes are put back for the caller. */
function readResponseHead(socket: Duplex): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const cleanup = () => {
      socket.off("data", onData);
      socket.off("error", onError);
      socket.off("end", onEnd);
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const onEnd = () => {
      cleanup();
      reject(new HijackError("the engine closed the connection before answering the attach request"));
    };
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf("\r\n\r\n");
      if (end < 0) {
        if (buffered.length > 64 * 1024) onError(new HijackError("the engine's answer to attach has no end of headers"));
        return;
      }
      cleanup();
      socket.pause();
      const head = buffered.subarray(0, end).toString("latin1");
      const rest = buffered.subarray(end + 4);
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
      if (status !== 101 && status !== 200) {
        const body = rest.toString("utf8");
        socket.destroy();
        reject(new HijackError(extractMessage(body) || head.split("\r\n")[0] || "bad answer", status || undefined));
        return;
      }
      if (rest.length > 0) socket.unshift(rest);
      resolve(socket);
    };
    socket.on("data", onData);
    socket.once("error", onError);
    socket.once("end", onEnd);
  });
}

function extractMessage(body: string): string {
  const json = body.slice(body.indexOf("{"));
  try {
    return (JSON.parse(json) as { message?: string }).message ?? "";
  } catch {
    return body.trim().slice(0, 200);
  }
}

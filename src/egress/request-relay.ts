import type { Duplex } from "node:stream";
import { ChunkedTracker, HeadScanner, MAX_HEAD_BYTES, parseHead, type BodyFraming, type RequestHead } from "./http1.ts";

/**
 * Relays one HTTP/1.1 client connection to one server connection, request
 * by request, so that each request head can be checked and rewritten
 * (intercept.ts adds the credential) while bodies stream through untouched.
 *
 * Requests are read strictly in sequence: a head, then exactly the body its
 * framing announces (Content-Length bytes, or chunks up to the last one and
 * its trailers, checked by ChunkedTracker), then the next head, so what the
 * server takes for the next request is what was checked as the next
 * request. Keep-alive and pipelining work as they would without the proxy.
 *
 * Responses are not parsed: they are relayed as they come. The server
 * connection serves only this client, in order, so there is nothing to
 * route; the server's own framing reaches the client unchanged.
 */

export type HeadDecision =
  | { kind: "send"; head: string; framing: Exclude<BodyFraming, { kind: "bad" }>; upgrade: boolean }
  | { kind: "refuse"; status: number; reason: string };

export interface RelayOutcome {
  /** Bytes sent to the server (heads as rewritten, bodies), and received from it. */
  bytesUp: number;
  bytesDown: number;
  /** Why the exchange was cut short: a refused request, a malformed one, a socket error. */
  error?: string;
}

type Mode =
  | { kind: "head"; scanner: HeadScanner }
  | { kind: "length"; remaining: number }
  | { kind: "chunked"; tracker: ChunkedTracker }
  // After an upgrade request (WebSocket), the new protocol's bytes, unexamined. Should the server
  // decline and keep the connection, later requests pass unexamined too, but without a credential:
  // it is added only to heads that were read here.
  | { kind: "raw" }
  | { kind: "stopped" };

/** Give the other side this long to finish after one side closed cleanly. */
const LINGER_MS = 5_000;

/**
 * Runs until both connections are closed. `decide` sees every request head;
 * a refusal before anything was sent answers the client with `status`, and
 * later (responses to earlier requests may still be on their way, and an
 * answer of the proxy's own would be read as one of them) cuts both
 * connections.
 */
export function relayRequests(client: Duplex, server: Duplex, decide: (head: RequestHead) => HeadDecision): Promise<RelayOutcome> {
  return new Promise((resolve) => {
    let mode: Mode = { kind: "head", scanner: new HeadScanner() };
    let sent = 0;
    let bytesUp = 0;
    let bytesDown = 0;
    let error: string | undefined;
    let serverFull = false;

    const toServer = (bytes: Buffer | string): void => {
      bytesUp += typeof bytes === "string" ? Buffer.byteLength(bytes, "latin1") : bytes.length;
      if (!server.write(typeof bytes === "string" ? Buffer.from(bytes, "latin1") : bytes) && !serverFull) {
        serverFull = true;
        client.pause();
        server.once("drain", () => {
          serverFull = false;
          client.resume();
        });
      }
    };

    const stop = (status: number, reason: string): void => {
      error ??= reason;
      mode = { kind: "stopped" };
      if (sent === 0) {
        client.end(errorResponse(status, reason));
        server.destroy();
      } else {
        client.destroy();
        server.destroy();
      }
    };

    const onClientData = (chunk: Buffer): void => {
      let rest = chunk;
      while (rest.length > 0) {
        switch (mode.kind) {
          case "stopped":
            return;
          case "raw":
            toServer(rest);
            return;
          case "head": {
            const scan = mode.scanner.feed(rest);
            if (scan.kind === "incomplete") return;
            if (scan.kind === "too-large") return stop(431, `request head larger than ${MAX_HEAD_BYTES / 1024} KiB`);
            rest = scan.rest;
            const head = parseHead(scan.head);
            if ("why" in head) return stop(400, `malformed request: ${head.why}`);
            const decision = decide(head);
            if (decision.kind === "refuse") return stop(decision.status, decision.reason);
            toServer(decision.head);
            sent++;
            const { framing } = decision;
            if (decision.upgrade) mode = { kind: "raw" };
            else if (framing.kind === "length" && framing.length > 0) mode = { kind: "length", remaining: framing.length };
            else if (framing.kind === "chunked") mode = { kind: "chunked", tracker: new ChunkedTracker() };
            else mode = { kind: "head", scanner: new HeadScanner() };
            break;
          }
          case "length": {
            const take = Math.min(mode.remaining, rest.length);
            toServer(rest.subarray(0, take));
            rest = rest.subarray(take);
            mode.remaining -= take;
            if (mode.remaining === 0) mode = { kind: "head", scanner: new HeadScanner() };
            break;
          }
          case "chunked": {
            const take = mode.tracker.feed(rest);
            if (mode.tracker.error) return stop(400, `malformed chunked body: ${mode.tracker.error}`);
            toServer(rest.subarray(0, take));
            rest = rest.subarray(take);
            if (mode.tracker.done) mode = { kind: "head", scanner: new HeadScanner() };
            break;
          }
        }
      }
    };

    let clientFull = false;
    const onServerData = (chunk: Buffer): void => {
      bytesDown += chunk.length;
      if (!client.write(chunk) && !clientFull) {
        clientFull = true;
        server.pause();
        client.once("drain", () => {
          clientFull = false;
          server.resume();
        });
      }
    };

    let open = 2;
    const closed = (other: Duplex) => (hadError?: boolean) => {
      if (hadError) other.destroy();
      else {
        if (!other.destroyed) other.end();
        const t = setTimeout(() => other.destroy(), LINGER_MS);
        (t as { unref?: () => void }).unref?.();
      }
      if (--open === 0) resolve({ bytesUp, bytesDown, ...(error !== undefined ? { error } : {}) });
    };
    for (const [socket, name] of [
      [client, "client"],
      [server, "server"],
    ] as const) {
      socket.on("error", (err: NodeJS.ErrnoException) => (error ??= `${name}: ${err.code ?? err.message}`));
    }
    client.once("close", closed(server));
    server.once("close", closed(client));
    client.on("end", () => {
      if (mode.kind !== "stopped") server.end();
    });
    server.on("end", () => client.end());
    client.on("data", onClientData);
    server.on("data", onServerData);
    client.resume();
    server.resume();
  });
}

/** The proxy's own answer, inside the tunnel (the client reads it as the server's). */
export function errorResponse(status: number, message: string): string {
  const text: Record<number, string> = { 400: "Bad Request", 403: "Forbidden", 405: "Method Not Allowed", 421: "Misdirected Request", 431: "Request Header Fields Too Large", 502: "Bad Gateway" };
  const body = `sandbox egress proxy: ${message}\n`;
  return `HTTP/1.1 ${status} ${text[status] ?? "Error"}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\nX-Sandbox-Egress: denied\r\n\r\n${body}`;
}

import type { Socket } from "node:net";

/**
 * The proxy's hook for tunnels it does not simply relay: for the hosts an
 * interceptor claims, an allowed CONNECT (host allowed, address dialled,
 * ClientHello's SNI checked like any tunnel's) is handed over instead of
 * being piped byte for byte. intercept.ts is the one implementation: it
 * terminates TLS to add credentials to requests.
 */
export interface TunnelInterceptor {
  /** Whether the tunnel to host:port is handed over (asked once the tunnel is allowed). */
  intercepts(host: string, port: number): boolean;
  /** Serves the tunnel until both sides are closed; the proxy records the outcome in the audit. */
  serve(tunnel: InterceptedTunnel): Promise<TunnelOutcome>;
}

export interface InterceptedTunnel {
  /** The container's connection: answered `200`, its ClientHello already read (in `hello`), paused. */
  client: Socket;
  /** The TCP connection to the destination's checked address, paused; nothing sent on it yet. */
  upstream: Socket;
  /** The bytes read from `client` after the CONNECT head: the whole ClientHello. */
  hello: Buffer;
  /** As the CONNECT named it (normalised). */
  host: string;
  port: number;
  /**
   * The egress rules for each request read from the tunnel (method and path,
   * which the CONNECT did not show): a reason refuses the request with 403.
   * The proxy records the refusal itself.
   */
  checkRequest?: (request: { method: string; path: string }) => string | undefined;
}

export interface TunnelOutcome {
  /** Bytes of request data sent to the destination, and of response data received from it. */
  bytesUp: number;
  bytesDown: number;
  /** Why the tunnel failed or was cut, when it did. */
  error?: string;
}

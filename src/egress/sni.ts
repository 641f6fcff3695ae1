/**
 * Reads the server name (SNI) from the first bytes a client sends through a
 * CONNECT tunnel. Pure: bytes in, verdict out.
 *
 * The proxy allows a tunnel by the host named in CONNECT, but the TLS
 * server at the other end picks a site by the SNI in the ClientHello. A CDN
 * serves many sites from one address, so `CONNECT allowed.example:443` with
 * SNI `anything-else.example` would reach a site the allow-list never named
 * ("domain fronting"). The proxy therefore reads the ClientHello before
 * dialling and requires its SNI to name the CONNECT host.
 *
 * The handshake message may span several TLS records (RFC 8446 §5.1), so
 * records are reassembled up to MAX_HELLO_BYTES. Encrypted Client Hello only
 * shows the outer (public) name; that name must match like any other.
 */

export type HelloResult =
  | { kind: "incomplete" }
  | { kind: "hello"; sni: string | undefined }
  | { kind: "not-tls"; why: string };

/** Larger than any real ClientHello (even with post-quantum key shares), small enough to bound memory. */
export const MAX_HELLO_BYTES = 64 * 1024;

const RECORD_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
const EXT_SERVER_NAME = 0;
const NAME_TYPE_HOST = 0;

export function parseClientHello(data: Uint8Array): HelloResult {
  const bad = (why: string): HelloResult => ({ kind: "not-tls", why });
  // Reassemble handshake bytes from consecutive records.
  const chunks: Uint8Array[] = [];
  let have = 0;
  let need: number | undefined;
  let offset = 0;
  while (need === undefined || have < need) {
    if (data.length < offset + 5) return data.length > MAX_HELLO_BYTES ? bad("the ClientHello is too large") : { kind: "incomplete" };
    if (data[offset] !== RECORD_HANDSHAKE) {
      return bad(offset === 0 ? "the tunnel did not start with a TLS handshake" : "the ClientHello was interrupted by another record");
    }
    if (data[offset + 1] !== 3) return bad("the record does not carry a TLS version");
    const length = u16(data, offset + 3);
    if (length === 0 || length > 16384 + 2048) return bad("the TLS record has an impossible length");
    const end = offset + 5 + length;
    const body = data.subarray(offset + 5, Math.min(end, data.length));
    chunks.push(body);
    have += body.length;
    if (need === undefined && have >= 4) {
      const first = concat(chunks, 4);
      if (first[0] !== HANDSHAKE_CLIENT_HELLO) return bad("the first handshake message is not a ClientHello");
      need = 4 + ((first[1] ?? 0) << 16) + ((first[2] ?? 0) << 8) + (first[3] ?? 0);
      if (need > MAX_HELLO_BYTES) return bad("the ClientHello is too large");
    }
    if (end > data.length) {
      if (need !== undefined && have >= need) break;
      return { kind: "incomplete" };
    }
    offset = end;
  }
  const message = concat(chunks, need);
  return readHello(message.subarray(4));
}

function readHello(hello: Uint8Array): HelloResult {
  const bad = (why: string): HelloResult => ({ kind: "not-tls", why: `malformed ClientHello: ${why}` });
  let p = 2 + 32; // legacy_version, random
  if (hello.length < p + 1) return bad("too short");
  p += 1 + (hello[p] ?? 0); // session id
  if (hello.length < p + 2) return bad("no cipher suites");
  p += 2 + u16(hello, p);
  if (hello.length < p + 1) return bad("no compression methods");
  p += 1 + (hello[p] ?? 0);
  if (p === hello.length) return { kind: "hello", sni: undefined }; // no extensions at all
  if (hello.length < p + 2) return bad("truncated extensions");
  const extEnd = p + 2 + u16(hello, p);
  if (extEnd > hello.length) return bad("extensions overrun the message");
  p += 2;
  let sni: string | undefined;
  let sawSni = false;
  while (p < extEnd) {
    if (p + 4 > extEnd) return bad("truncated extension header");
    const type = u16(hello, p);
    const len = u16(hello, p + 2);
    const body = hello.subarray(p + 4, p + 4 + len);
    if (p + 4 + len > extEnd) return bad("extension overruns the list");
    if (type === EXT_SERVER_NAME) {
      // Two server_name extensions would let a server and a proxy read different names.
      if (sawSni) return bad("more than one server_name extension");
      sawSni = true;
      const name = readServerName(body);
      if (name === null) return bad("unreadable server_name extension");
      sni = name;
    }
    p += 4 + len;
  }
  return { kind: "hello", sni };
}

/** The one host_name in a server_name extension; null when malformed or ambiguous. */
function readServerName(ext: Uint8Array): string | undefined | null {
  if (ext.length < 2) return null;
  const listEnd = 2 + u16(ext, 0);
  if (listEnd !== ext.length) return null;
  let p = 2;
  let host: string | undefined;
  while (p < listEnd) {
    if (p + 3 > listEnd) return null;
    const type = ext[p];
    const len = u16(ext, p + 1);
    if (p + 3 + len > listEnd) return null;
    if (type === NAME_TYPE_HOST) {
      if (host !== undefined) return null;
      if (len === 0 || len > 255) return null;
      const bytes = ext.subarray(p + 3, p + 3 + len);
      // RFC 6066: ASCII host names only, no NULs or controls.
      if (bytes.some((b) => b <= 0x20 || b >= 0x7f)) return null;
      host = String.fromCharCode(...bytes);
    }
    p += 3 + len;
  }
  return host;
}

function u16(b: Uint8Array, at: number): number {
  return ((b[at] ?? 0) << 8) | (b[at + 1] ?? 0);
}

function concat(chunks: readonly Uint8Array[], limit: number): Uint8Array {
  const total = Math.min(limit, chunks.reduce((n, c) => n + c.length, 0));
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    if (at >= total) break;
    const take = c.subarray(0, total - at);
    out.set(take, at);
    at += take.length;
  }
  return out;
}

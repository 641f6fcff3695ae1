import { describe, expect, test } from "bun:test";
import { parseClientHello } from "../../src/egress/sni.ts";
import { captureClientHello } from "./fixtures.ts";

/** A minimal ClientHello built by hand: the extensions are given raw. */
function hello(extensions: Buffer[], opts: { recordType?: number; handshakeType?: number } = {}): Buffer {
  const exts = Buffer.concat(extensions);
  const body = Buffer.concat([
    Buffer.from([3, 3]),
    Buffer.alloc(32, 7),
    Buffer.from([0]), // session id
    Buffer.from([0, 2, 0x13, 0x01]), // one cipher suite
    Buffer.from([1, 0]), // null compression
    u16(exts.length),
    exts,
  ]);
  const hs = Buffer.concat([Buffer.from([opts.handshakeType ?? 1, 0]), u16(body.length), body]);
  return Buffer.concat([Buffer.from([opts.recordType ?? 22, 3, 1]), u16(hs.length), hs]);
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function sniExt(...names: string[]): Buffer {
  const list = Buffer.concat(names.map((n) => Buffer.concat([Buffer.from([0]), u16(n.length), Buffer.from(n, "latin1")])));
  const body = Buffer.concat([u16(list.length), list]);
  return Buffer.concat([u16(0), u16(body.length), body]);
}

const otherExt = Buffer.concat([u16(43), u16(3), Buffer.from([2, 3, 4])]);

/** Re-frames one record's handshake bytes into records of at most `size` bytes. */
function fragment(record: Buffer, size: number): Buffer {
  const hs = record.subarray(5);
  const parts: Buffer[] = [];
  for (let i = 0; i < hs.length; i += size) {
    const piece = hs.subarray(i, i + size);
    parts.push(Buffer.from([22, 3, 1]), u16(piece.length), piece);
  }
  return Buffer.concat(parts);
}

describe("parseClientHello", () => {
  test("a real client's hello: the SNI it was given, or none", async () => {
    expect(parseClientHello(await captureClientHello("allowed.test"))).toEqual({ kind: "hello", sni: "allowed.test" });
    expect(parseClientHello(await captureClientHello(undefined))).toEqual({ kind: "hello", sni: undefined });
  });

  test("partial input asks for more, at every cut", async () => {
    const full = await captureClientHello("allowed.test");
    for (const cut of [0, 1, 4, 5, 6, 40, full.length - 1]) expect(parseClientHello(full.subarray(0, cut)).kind).toBe("incomplete");
  });

  test("a hello fragmented over several records is reassembled", async () => {
    const full = await captureClientHello("fragmented.test");
    const split = fragment(full, 100);
    expect(parseClientHello(split)).toEqual({ kind: "hello", sni: "fragmented.test" });
    expect(parseClientHello(split.subarray(0, 300)).kind).toBe("incomplete");
  });

  test("hand-built hellos: other extensions around the name", () => {
    expect(parseClientHello(hello([otherExt, sniExt("a.test"), otherExt]))).toEqual({ kind: "hello", sni: "a.test" });
    expect(parseClientHello(hello([otherExt]))).toEqual({ kind: "hello", sni: undefined });
  });

  test.each([
    ["plain HTTP", Buffer.from("GET / HTTP/1.1\r\n\r\n"), "did not start with a TLS handshake"],
    ["an SSH banner", Buffer.from("SSH-2.0-OpenSSH_9.6\r\n"), "did not start with a TLS handshake"],
    ["a ServerHello", hello([sniExt("a.test")], { handshakeType: 2 }), "not a ClientHello"],
    ["an alert record", hello([sniExt("a.test")], { recordType: 21 }), "did not start with a TLS handshake"],
    ["two server_name extensions", hello([sniExt("a.test"), sniExt("b.test")]), "more than one server_name"],
    ["two host names in one extension", hello([sniExt("a.test", "b.test")]), "server_name"],
    ["a name with a NUL", hello([sniExt("a.test\0.evil")]), "server_name"],
  ])("refuses %s", (_name, bytes, why) => {
    const r = parseClientHello(bytes);
    expect(r.kind).toBe("not-tls");
    if (r.kind === "not-tls") expect(r.why).toContain(why);
  });

  test("lengths that overrun are malformed, not trusted", () => {
    const h = hello([sniExt("a.test")]);
    // Claim a longer extension list than the message holds.
    const extLenAt = 5 + 4 + 2 + 32 + 1 + 4 + 2;
    const broken = Buffer.from(h);
    broken.writeUInt16BE(0xfff0, extLenAt);
    expect(parseClientHello(broken).kind).toBe("not-tls");
  });
});

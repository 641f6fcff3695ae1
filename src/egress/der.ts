/**
 * The few DER (ASN.1 Distinguished Encoding Rules, X.690) encodings an X.509
 * certificate needs. Pure: values in, bytes out. Encoding only: the proxy
 * writes certificates, it never has to read one (node:tls does that).
 *
 * Hand-written rather than a dependency: a certificate uses a dozen tag
 * types, all of them tag-length-value with a definite length, and DER leaves
 * no choices (shortest length form, minimal integers) to get wrong.
 */

export type Der = Uint8Array;

const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Tag, length (short form below 128, else the fewest length bytes), value. */
export function tlv(tag: number, value: Uint8Array): Der {
  const n = value.length;
  let head: number[];
  if (n < 0x80) head = [tag, n];
  else {
    const bytes: number[] = [];
    for (let rest = n; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
    head = [tag, 0x80 | bytes.length, ...bytes];
  }
  const out = new Uint8Array(head.length + n);
  out.set(head, 0);
  out.set(value, head.length);
  return out;
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function sequence(...items: Der[]): Der {
  return tlv(TAG.SEQUENCE, concat(items));
}

/** SET OF: DER sorts the encoded members (X.690 §11.6). */
export function set(...items: Der[]): Der {
  const sorted = [...items].sort(compareBytes);
  return tlv(TAG.SET, concat(sorted));
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

export function boolean(value: boolean): Der {
  return tlv(TAG.BOOLEAN, Uint8Array.of(value ? 0xff : 0x00));
}

/**
 * A non-negative INTEGER from its big-endian magnitude: leading zero bytes
 * dropped, one 0x00 put back when the top bit is set (else it would read as
 * negative).
 */
export function unsignedInteger(magnitude: Uint8Array): Der {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const body = magnitude.subarray(start);
  if (body.length === 0) return tlv(TAG.INTEGER, Uint8Array.of(0));
  return tlv(TAG.INTEGER, (body[0] ?? 0) & 0x80 ? concat([Uint8Array.of(0), body]) : body);
}

export function smallInteger(n: number): Der {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`not a small non-negative integer: ${n}`);
  const bytes: number[] = [];
  for (let rest = n; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
  return unsignedInteger(Uint8Array.from(bytes.length ? bytes : [0]));
}

/** Dotted text → OBJECT IDENTIFIER: first two arcs in one byte, each arc base-128 with continuation bits. */
export function oid(dotted: string): Der {
  const arcs = dotted.split(".").map((a) => {
    if (!/^\d+$/.test(a)) throw new RangeError(`bad OID ${dotted}`);
    return Number(a);
  });
  const [a0, a1, ...rest] = arcs;
  if (a0 === undefined || a1 === undefined || a0 > 2 || (a0 < 2 && a1 > 39)) throw new RangeError(`bad OID ${dotted}`);
  const bytes: number[] = [];
  for (const arc of [a0 * 40 + a1, ...rest]) {
    const group: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) group.unshift(0x80 | (v & 0x7f));
    bytes.push(...group);
  }
  return tlv(TAG.OID, Uint8Array.from(bytes));
}

/** BIT STRING of whole bytes (no unused bits): keys and signatures. */
export function bitString(bytes: Uint8Array): Der {
  return tlv(TAG.BIT_STRING, concat([Uint8Array.of(0), bytes]));
}

/**
 * A named-bit BIT STRING (keyUsage): bit 0 is the most significant bit of the
 * first byte; DER drops trailing zero bits and says how many bits of the last
 * byte are unused.
 */
export function namedBits(bits: readonly number[]): Der {
  if (bits.length === 0) return tlv(TAG.BIT_STRING, Uint8Array.of(0));
  const highest = Math.max(...bits);
  const bytes = new Uint8Array(Math.floor(highest / 8) + 1);
  for (const bit of bits) bytes[Math.floor(bit / 8)]! |= 0x80 >> bit % 8;
  const unused = 7 - (highest % 8);
  return tlv(TAG.BIT_STRING, concat([Uint8Array.of(unused), bytes]));
}

export function octetString(bytes: Uint8Array): Der {
  return tlv(TAG.OCTET_STRING, bytes);
}

export function utf8String(text: string): Der {
  return tlv(TAG.UTF8_STRING, new TextEncoder().encode(text));
}

/** The content bytes of an IA5String (ASCII), for the SAN's implicitly tagged dNSName. */
export function ascii(text: string): Uint8Array {
  if (!/^[\x00-\x7f]*$/.test(text)) throw new RangeError("IA5String takes ASCII only");
  return new TextEncoder().encode(text);
}

/**
 * RFC 5280 §4.1.2.5: UTCTime (YYMMDDHHMMSSZ) through 2049, GeneralizedTime
 * (YYYYMMDDHHMMSSZ) from 2050; whole seconds, always UTC.
 */
export function time(date: Date): Der {
  const iso = date.toISOString(); // 2026-01-02T03:04:05.678Z
  const digits = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  const year = date.getUTCFullYear();
  if (year >= 1950 && year < 2050) return tlv(TAG.UTC_TIME, new TextEncoder().encode(digits.slice(2)));
  return tlv(TAG.GENERALIZED_TIME, new TextEncoder().encode(digits));
}

/** [n] EXPLICIT: the value keeps its own tag inside a constructed context tag. */
export function explicit(n: number, value: Der): Der {
  return tlv(0xa0 | n, value);
}

/** [n] IMPLICIT for a primitive value: the value's bytes under a context tag (SAN dNSName, iPAddress). */
export function implicitPrimitive(n: number, content: Uint8Array): Der {
  return tlv(0x80 | n, content);
}

/** [n] IMPLICIT for a constructed value (a SEQUENCE's members under a context tag). */
export function implicitConstructed(n: number, ...items: Der[]): Der {
  return tlv(0xa0 | n, concat(items));
}

/** PEM armour: base64 in 64-character lines (RFC 7468). */
export function pem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString("base64");
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

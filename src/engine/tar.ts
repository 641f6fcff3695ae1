/**
 * A small tar writer and reader: what the Engine API's archive endpoints
 * need, nothing more. ustar headers, PAX extended headers for what ustar
 * cannot hold (long or non-ASCII names and link targets, sizes of 8 GiB and
 * more), GNU long names when reading (some engines write them). Regular
 * files, directories, symlinks and hard links; modes and mtimes; uid/gid.
 * Devices and FIFOs are read as "other" so callers can skip them.
 *
 * Written here rather than taken from npm: about 250 lines, no dependency,
 * and it runs unchanged on Node, Bun and Deno (web streams are not needed).
 */

export type TarType = "file" | "dir" | "symlink" | "hardlink" | "other";

export interface TarHeader {
  /** Relative path, '/'-separated; directories without the trailing slash. */
  name: string;
  type: TarType;
  /** Permission bits (07777). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch. */
  mtime: number;
  /** Symlink or hard link target. */
  linkname: string;
}

export const BLOCK = 512;
const TYPE_FLAGS: Record<TarType, string> = { file: "0", dir: "5", symlink: "2", hardlink: "1", other: "0" };

// --- writing -------------------------------------------------------------------

function writeString(buf: Buffer, offset: number, length: number, text: string): void {
  buf.write(text, offset, Math.min(length, Buffer.byteLength(text)), "utf8");
}

function writeOctal(buf: Buffer, offset: number, length: number, value: number): void {
  // length-1 octal digits and a NUL, as GNU and Go write them.
  writeString(buf, offset, length, `${Math.floor(value).toString(8).padStart(length - 1, "0")}\0`);
}

function fitsOctal(value: number, length: number): boolean {
  return value >= 0 && value < 8 ** (length - 1);
}

function isAscii(text: string): boolean {
  return /^[\x20-\x7e]*$/.test(text);
}

/** Split a long name into ustar's prefix (≤155) and name (≤100) at a '/', if possible. */
export function splitUstarName(name: string): { prefix: string; name: string } | undefined {
  if (Buffer.byteLength(name) <= 100) return { prefix: "", name };
  for (let i = name.length - 1; i > 0; i--) {
    if (name[i] !== "/") continue;
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) <= 100 && rest !== "") return { prefix, name: rest };
  }
  return undefined;
}

function rawHeader(h: TarHeader, fullName: string, flag: string): Buffer {
  const buf = Buffer.alloc(BLOCK);
  const split = splitUstarName(fullName) ?? { prefix: "", name: fullName.slice(0, 100) };
  writeString(buf, 0, 100, split.name);
  writeOctal(buf, 100, 8, h.mode & 0o7777);
  writeOctal(buf, 108, 8, fitsOctal(h.uid, 8) ? h.uid : 0);
  writeOctal(buf, 116, 8, fitsOctal(h.gid, 8) ? h.gid : 0);
  writeOctal(buf, 124, 12, fitsOctal(h.size, 12) ? h.size : 0);
  writeOctal(buf, 136, 12, fitsOctal(h.mtime, 12) ? h.mtime : 0);
  buf.write(flag, 156, 1, "latin1");
  writeString(buf, 157, 100, h.linkname);
  buf.write("ustar\u000000", 257, 8, "latin1");
  writeString(buf, 345, 155, split.prefix);
  buf.write("        ", 148, 8, "latin1");
  let sum = 0;
  for (const byte of buf) sum += byte;
  writeString(buf, 148, 8, `${sum.toString(8).padStart(6, "0")}\0 `);
  return buf;
}

/** One PAX record: "<len> key=value\n", where len counts itself. */
export function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
  return `${len}${body}`;
}

function padding(size: number): Buffer {
  const rest = size % BLOCK;
  return Buffer.alloc(rest === 0 ? 0 : BLOCK - rest);
}

/** The header block(s) for one entry: a PAX header first when ustar cannot hold it. */
export function encodeHeader(h: TarHeader): Buffer {
  // Folders end in "/", except the root ".": Podman applies owner and mode to
  // the target folder from a "." entry but not from "./".
  const fullName = h.type === "dir" && !h.name.endsWith("/") && h.name !== "." ? `${h.name}/` : h.name;
  const records: string[] = [];
  if (!isAscii(fullName) || splitUstarName(fullName) === undefined) records.push(paxRecord("path", fullName));
  if (!isAscii(h.linkname) || Buffer.byteLength(h.linkname) > 100) records.push(paxRecord("linkpath", h.linkname));
  if (!fitsOctal(h.size, 12)) records.push(paxRecord("size", String(h.size)));
  if (!fitsOctal(h.uid, 8)) records.push(paxRecord("uid", String(h.uid)));
  if (!fitsOctal(h.gid, 8)) records.push(paxRecord("gid", String(h.gid)));
  const main = rawHeader(h, fullName, TYPE_FLAGS[h.type]);
  if (records.length === 0) return main;
  const pax = Buffer.from(records.join(""), "utf8");
  const paxName = `PaxHeaders/${fullName.replace(/\/$/, "").split("/").pop() ?? "x"}`.slice(0, 100);
  const paxHeader = rawHeader({ ...h, name: paxName, size: pax.length, linkname: "", type: "file" }, paxName, "x");
  return Buffer.concat([paxHeader, pax, padding(pax.length), main]);
}

/** The padding after `size` bytes of entry data. */
export function entryPadding(size: number): Buffer {
  return padding(size);
}

/** Two zero blocks end an archive. */
export const END_OF_ARCHIVE = Buffer.alloc(BLOCK * 2);

// --- reading -------------------------------------------------------------------

function readString(buf: Buffer, offset: number, length: number): string {
  const slice = buf.subarray(offset, offset + length);
  const nul = slice.indexOf(0);
  return slice.subarray(0, nul < 0 ? length : nul).toString("utf8");
}

/** Octal, or GNU base-256 when the high bit of the first byte is set. */
export function readNumber(buf: Buffer, offset: number, length: number): number {
  const first = buf[offset] ?? 0;
  if (first & 0x80) {
    let value = first & 0x3f;
    for (let i = 1; i < length; i++) value = value * 256 + (buf[offset + i] ?? 0);
    return first & 0x40 ? -value : value;
  }
  const text = readString(buf, offset, length).trim();
  return text === "" ? 0 : parseInt(text, 8);
}

export function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let offset = 0;
  while (offset < data.length) {
    const space = data.indexOf(0x20, offset);
    if (space < 0) break;
    const len = Number(data.subarray(offset, space).toString("latin1"));
    if (!Number.isInteger(len) || len <= 0) break;
    const record = data.subarray(space + 1, offset + len - 1).toString("utf8");
    const eq = record.indexOf("=");
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    offset += len;
  }
  return out;
}

export class TarFormatError extends Error {}

function checksumOk(block: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (block[i] ?? 0);
  return sum === readNumber(block, 148, 8);
}

function typeOf(flag: string): TarType {
  switch (flag) {
    case "0":
    case "\0":
    case "7":
      return "file";
    case "5":
      return "dir";
    case "2":
      return "symlink";
    case "1":
      return "hardlink";
    default:
      return "other";
  }
}

/** Pulls exact byte counts out of an async stream of chunks. */
class ByteReader {
  private buffered: Buffer[] = [];
  private length = 0;
  private done = false;
  constructor(private readonly source: AsyncIterator<Buffer | Uint8Array | string>) {}

  /** Up to `n` bytes (fewer only at the end of the stream). */
  async read(n: number): Promise<Buffer> {
    while (this.length < n && !this.done) {
      const next = await this.source.next();
      if (next.done) this.done = true;
      else {
        const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value as Uint8Array);
        this.buffered.push(chunk);
        this.length += chunk.length;
      }
    }
    const all = this.buffered.length === 1 ? (this.buffered[0] as Buffer) : Buffer.concat(this.buffered);
    const out = all.subarray(0, Math.min(n, all.length));
    const rest = all.subarray(out.length);
    this.buffered = rest.length > 0 ? [rest] : [];
    this.length = rest.length;
    return out;
  }
}

export interface TarEntry extends TarHeader {
  /** The entry's data; must be consumed (or drained) before the next entry is read. */
  body: AsyncIterable<Buffer>;
}

/**
 * Entries of a tar stream, one at a time. Each entry's `body` must be read
 * to the end (or left alone: unread data is skipped) before asking for the next.
 */
export async function* readTar(source: AsyncIterable<Buffer | Uint8Array | string>): AsyncGenerator<TarEntry> {
  const reader = new ByteReader(source[Symbol.asyncIterator]());
  let pax: Record<string, string> = {};
  let longName: string | undefined;
  let longLink: string | undefined;
  for (;;) {
    const block = await reader.read(BLOCK);
    if (block.length === 0) return;
    if (block.length < BLOCK) throw new TarFormatError("tar stream ended inside a header");
    if (block.every((b) => b === 0)) return;
    if (!checksumOk(block)) throw new TarFormatError("tar header checksum mismatch");
    const flag = String.fromCharCode(block[156] ?? 0);
    const size = readNumber(block, 124, 12);
    const dataSize = pax.size !== undefined ? Number(pax.size) : size;
    if (flag === "x" || flag === "g" || flag === "L" || flag === "K") {
      const data = await reader.read(size);
      await reader.read(padding(size).length);
      if (flag === "x") pax = { ...pax, ...parsePax(data) };
      else if (flag === "L") longName = readString(data, 0, data.length);
      else if (flag === "K") longLink = readString(data, 0, data.length);
      // "g" (global) headers carry nothing sandbox uses.
      continue;
    }
    const magicUstar = block.subarray(257, 262).toString("latin1") === "ustar";
    const prefix = magicUstar ? readString(block, 345, 155) : "";
    const baseName = readString(block, 0, 100);
    const name = pax.path ?? longName ?? (prefix ? `${prefix}/${baseName}` : baseName);
    const header: TarHeader = {
      name: name.replace(/\/+$/, ""),
      type: typeOf(flag),
      mode: readNumber(block, 100, 8) & 0o7777,
      uid: pax.uid !== undefined ? Number(pax.uid) : readNumber(block, 108, 8),
      gid: pax.gid !== undefined ? Number(pax.gid) : readNumber(block, 116, 8),
      size: dataSize,
      mtime: pax.mtime !== undefined ? Math.floor(Number(pax.mtime)) : readNumber(block, 136, 12),
      linkname: pax.linkpath ?? longLink ?? readString(block, 157, 100),
    };
    pax = {};
    longName = undefined;
    longLink = undefined;
    const bodySize = header.type === "file" || header.type === "other" ? dataSize : 0;
    let remaining = bodySize;
    const body: AsyncIterable<Buffer> = {
      async *[Symbol.asyncIterator]() {
        while (remaining > 0) {
          const chunk = await reader.read(Math.min(remaining, 1024 * 1024));
          if (chunk.length === 0) throw new TarFormatError("tar stream ended inside an entry");
          remaining -= chunk.length;
          yield chunk;
        }
      },
    };
    yield { ...header, body };
    // Whatever the caller did not read is skipped.
    while (remaining > 0) {
      const chunk = await reader.read(Math.min(remaining, 1024 * 1024));
      if (chunk.length === 0) throw new TarFormatError("tar stream ended inside an entry");
      remaining -= chunk.length;
    }
    await reader.read(padding(bodySize).length);
  }
}

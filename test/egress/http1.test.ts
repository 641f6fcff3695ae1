import { describe, expect, test } from "bun:test";
import {
  ChunkedTracker,
  HeadScanner,
  MAX_HEAD_BYTES,
  parseAbsoluteTarget,
  parseConnectTarget,
  parseRequestHead,
  requestFraming,
  ResponseRewriter,
  rewriteRequestHead,
} from "../../src/egress/http1.ts";

describe("parsing", () => {
  test("request heads are strict", () => {
    const text = "GET http://a.test/x HTTP/1.1\r\nHost: a.test\r\nX-A: 1\r\n\r\n";
    const ok = parseRequestHead(Buffer.from(`${text}BODY`));
    expect(ok.kind).toBe("head");
    if (ok.kind === "head") {
      expect(ok.head.headers).toEqual([["Host", "a.test"], ["X-A", "1"]]);
      expect(ok.length).toBe(text.length);
    }
    expect(parseRequestHead(Buffer.from("GET / HTTP/1.1\r\nHost: a")).kind).toBe("incomplete");
    expect(parseRequestHead(Buffer.from("GET / HTTP/1.1\r\nHost : a\r\n\r\n")).kind).toBe("bad");
    expect(parseRequestHead(Buffer.from("GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n")).kind).toBe("bad");
    expect(parseRequestHead(Buffer.from("get / HTTP/1.1\r\n\r\n")).kind).toBe("bad");
    expect(parseRequestHead(Buffer.from("GET / HTTP/2.0\r\n\r\n")).kind).toBe("bad");
  });

  test("a head trickled one byte at a time is found looking at each byte once", () => {
    const head = `GET http://a.test/ HTTP/1.1\r\n${"X-Pad: 0123456789abcdef0123456789abcdef0123456789\r\n".repeat(1200)}\r\n`;
    const bytes = Buffer.from(`${head}BODY`);
    expect(head.length).toBeGreaterThan(60_000);
    expect(head.length).toBeLessThan(MAX_HEAD_BYTES);
    const scanner = new HeadScanner();
    let result: ReturnType<HeadScanner["feed"]> = { kind: "incomplete" };
    let fed = 0;
    while (result.kind === "incomplete") result = scanner.feed(bytes.subarray(fed, ++fed));
    expect(result.kind).toBe("complete");
    if (result.kind === "complete") expect(result.head.toString("latin1")).toBe(head);
    expect(scanner.received).toBe(head.length);
    expect(scanner.scanned).toBe(head.length);
  });

  test("the end of a head split across pieces is found; the bytes after it are left over", () => {
    const bytes = Buffer.from("GET / HTTP/1.1\r\nA: b\r\n\r\nrest");
    const end = bytes.indexOf("rest");
    for (let split = end - 4; split < end; split++) {
      const scanner = new HeadScanner();
      expect(scanner.feed(bytes.subarray(0, split)).kind).toBe("incomplete");
      const second = scanner.feed(bytes.subarray(split));
      expect(second.kind).toBe("complete");
      if (second.kind === "complete") {
        expect(second.head.length).toBe(end);
        expect(second.rest.toString()).toBe("rest");
      }
      expect(scanner.scanned).toBe(end);
    }
    // "\r\r\n\r\n" ends too: the second \r starts the match over.
    expect(new HeadScanner().feed(Buffer.from("GET / HTTP/1.1\r\r\n\r\n")).kind).toBe("complete");
    expect(new HeadScanner().feed(Buffer.from("GET / HTTP/1.1\n\n\r\n")).kind).toBe("incomplete");
  });

  test("a head that does not end within the cap is too large, and nothing past the cap is examined", () => {
    const scanner = new HeadScanner(1000);
    expect(scanner.feed(Buffer.alloc(999, "a")).kind).toBe("incomplete");
    expect(scanner.feed(Buffer.from("a\r\n\r\n")).kind).toBe("too-large");
    expect(scanner.scanned).toBe(1000);
    // Exactly at the cap is still a head.
    const exact = `GET / HTTP/1.1\r\nX: ${"a".repeat(1000 - 23)}\r\n\r\n`;
    expect(exact.length).toBe(1000);
    expect(new HeadScanner(1000).feed(Buffer.from(exact)).kind).toBe("complete");
    expect(parseRequestHead(Buffer.alloc(MAX_HEAD_BYTES + 10, "a")).kind).toBe("too-large");
  });

  test("header values are trimmed without backtracking over long runs of blanks", () => {
    const blanks = " \t".repeat(10_000);
    const r = parseRequestHead(Buffer.from(`GET / HTTP/1.1\r\nX-A:${blanks}x${blanks}y${blanks}\r\n\r\n`));
    expect(r.kind).toBe("head");
    if (r.kind === "head") expect(r.head.headers[0]).toEqual(["X-A", `x${blanks}y`]);
  });

  test("CONNECT targets need a port; names are normalised, IPv4-mapped literals canonical", () => {
    expect(parseConnectTarget("Allowed.Test.:443")).toEqual({ host: "allowed.test", port: 443 });
    expect(parseConnectTarget("[::ffff:127.0.0.1]:443")).toEqual({ host: "::ffff:7f00:1", port: 443 });
    expect(parseConnectTarget("allowed.test")).toBeUndefined();
    expect(parseConnectTarget("allowed.test:0")).toBeUndefined();
    expect(parseConnectTarget("allowed.test:99999")).toBeUndefined();
    expect(parseConnectTarget("a b:443")).toBeUndefined();
  });

  test("absolute targets: http only, numeric hosts become addresses", () => {
    expect(parseAbsoluteTarget("http://Allowed.test:8080/a?b=1")).toEqual({ host: "allowed.test", port: 8080, path: "/a?b=1", pathname: "/a", authority: "allowed.test:8080" });
    // Dot segments are resolved before anything looks at the path: the server gets what the rules saw.
    expect(parseAbsoluteTarget("http://a.test/x/%2e%2E/admin")).toMatchObject({ path: "/admin", pathname: "/admin" });
    expect(parseAbsoluteTarget("http://2130706433/")).toMatchObject({ host: "127.0.0.1", port: 80 });
    expect(parseAbsoluteTarget("http://0x7f.1/")).toMatchObject({ host: "127.0.0.1" });
    expect(parseAbsoluteTarget("https://a.test/")).toHaveProperty("error");
    expect(parseAbsoluteTarget("/relative")).toHaveProperty("error");
    expect(parseAbsoluteTarget("http://u:p@a.test/")).toHaveProperty("error");
  });

  test("framing: both lengths or odd codings are refused", () => {
    const head = (lines: string) => {
      const r = parseRequestHead(Buffer.from(`POST http://a.test/ HTTP/1.1\r\n${lines}\r\n\r\n`));
      if (r.kind !== "head") throw new Error("bad head");
      return r.head;
    };
    expect(requestFraming(head("Content-Length: 5"))).toEqual({ kind: "length", length: 5 });
    expect(requestFraming(head("Content-Length: 5\r\nContent-Length: 5"))).toEqual({ kind: "length", length: 5 });
    expect(requestFraming(head("Content-Length: 5\r\nContent-Length: 6")).kind).toBe("bad");
    expect(requestFraming(head("Transfer-Encoding: chunked"))).toEqual({ kind: "chunked" });
    expect(requestFraming(head("Transfer-Encoding: chunked\r\nContent-Length: 3")).kind).toBe("bad");
    expect(requestFraming(head("Transfer-Encoding: gzip, chunked")).kind).toBe("bad");
    expect(requestFraming(head("X: y"))).toEqual({ kind: "none" });
  });

  test("the forwarded head is origin-form, Host from the URL, hop-by-hop headers and proxy credentials gone", () => {
    const r = parseRequestHead(
      Buffer.from("GET http://a.test:81/p?q HTTP/1.1\r\nHost: evil.test\r\nProxy-Authorization: Basic x\r\nConnection: keep-alive, X-Drop\r\nX-Drop: 1\r\nX-Keep: 2\r\n\r\n"),
    );
    if (r.kind !== "head") throw new Error("bad head");
    expect(rewriteRequestHead(r.head, "/p?q", "a.test:81")).toBe("GET /p?q HTTP/1.1\r\nHost: a.test:81\r\nX-Keep: 2\r\nConnection: close\r\n\r\n");
  });

  test("chunked tracker finds the end of the body, fed byte by byte or at once", () => {
    const body = Buffer.from("5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\nGET http://next/ HTTP/1.1\r\n");
    const end = body.indexOf("GET");
    const whole = new ChunkedTracker();
    expect(whole.feed(body)).toBe(end);
    expect(whole.done).toBe(true);
    const bytewise = new ChunkedTracker();
    let consumed = 0;
    for (let i = 0; i < body.length && !bytewise.done; i++) consumed += bytewise.feed(body.subarray(i, i + 1));
    expect(consumed).toBe(end);
    const bad = new ChunkedTracker();
    bad.feed(Buffer.from("zz\r\n"));
    expect(bad.error).toBeDefined();
  });

  test("response heads get Connection: close, after any 1xx", () => {
    const rw = new ResponseRewriter();
    const out = Buffer.concat([
      rw.feed(Buffer.from("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nConn")) ?? Buffer.alloc(0),
      rw.feed(Buffer.from("ection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\nhi")) ?? Buffer.alloc(0),
      rw.feed(Buffer.from("HTTP/1.1 200 not a head, body bytes")) ?? Buffer.alloc(0),
    ]).toString();
    expect(out).toBe("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhiHTTP/1.1 200 not a head, body bytes");
    expect(new ResponseRewriter().feed(Buffer.from("SSH-2.0-x\r\n\r\n"))).toBeUndefined();
  });
});

import { describe, expect, test } from "bun:test";
import { mergeEgressEntries, normalizeHostName, parseAllowEntry, parseAllowList, splitEgressList, splitHostPort } from "../../src/egress/allowlist.ts";

function list(entries: string[]) {
  const parsed = parseAllowList(entries);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.value;
}

function listError(entries: string[]): string {
  const parsed = parseAllowList(entries);
  if (parsed.ok) throw new Error(`${entries.join(",")} was accepted`);
  return parsed.error;
}

describe("entries", () => {
  test("hosts, ports, wildcards, addresses and ranges", () => {
    expect(parseAllowEntry("API.Example.com.")).toEqual({
      ok: true,
      value: { kind: "host", host: "api.example.com", action: "allow", port: undefined, methods: undefined, path: undefined, text: "API.Example.com." },
    });
    expect(parseAllowEntry("api.example.com:443")).toMatchObject({ ok: true, value: { kind: "host", port: 443 } });
    expect(parseAllowEntry("*.github.com")).toMatchObject({ ok: true, value: { kind: "suffix", suffix: "github.com" } });
    expect(parseAllowEntry("203.0.113.7")).toMatchObject({ ok: true, value: { kind: "cidr", cidr: { prefix: 32 } } });
    expect(parseAllowEntry("10.0.0.0/8:5432")).toMatchObject({ ok: true, value: { kind: "cidr", port: 5432, cidr: { prefix: 8 } } });
    expect(parseAllowEntry("[2001:db8::1]:443")).toMatchObject({ ok: true, value: { kind: "cidr", port: 443, cidr: { prefix: 128 } } });
    expect(parseAllowEntry("fd00::/8")).toMatchObject({ ok: true, value: { kind: "cidr", cidr: { prefix: 8 } } });
    expect(parseAllowEntry("[fd00::/8]:80")).toMatchObject({ ok: true, value: { kind: "cidr", port: 80 } });
  });

  test("deny rules, any host, methods and paths", () => {
    expect(parseAllowEntry("!*.Corp.Example")).toMatchObject({ ok: true, value: { action: "deny", kind: "suffix", suffix: "corp.example", text: "!*.Corp.Example" } });
    expect(parseAllowEntry("*")).toMatchObject({ ok: true, value: { action: "allow", kind: "any", port: undefined } });
    expect(parseAllowEntry("*:443")).toMatchObject({ ok: true, value: { kind: "any", port: 443 } });
    expect(parseAllowEntry("!*")).toMatchObject({ ok: true, value: { action: "deny", kind: "any" } });
    expect(parseAllowEntry("GET api.github.com/repos/**")).toMatchObject({
      ok: true,
      value: { action: "allow", kind: "host", host: "api.github.com", methods: ["GET"], path: { text: "/repos/**", segments: ["", "repos", "**"] } },
    });
    expect(parseAllowEntry("get|HEAD  api.test:8080/a/*.json")).toMatchObject({ ok: true, value: { methods: ["GET", "HEAD"], port: 8080, path: { segments: ["", "a", "*.json"] } } });
    expect(parseAllowEntry("!POST *.corp.example")).toMatchObject({ ok: true, value: { action: "deny", kind: "suffix", methods: ["POST"], path: undefined } });
    // /** limits nothing, so the rule is an ordinary host rule.
    expect(parseAllowEntry("api.test/**")).toMatchObject({ ok: true, value: { kind: "host", methods: undefined, path: undefined } });
    // Escapes of unreserved characters are decoded, so the pattern matches however the client spells the path.
    expect(parseAllowEntry("api.test/%7Euser/%2a")).toMatchObject({ ok: true, value: { path: { segments: ["", "~user", "%2A"] } } });
  });

  test.each([
    ["*.com", "too broad"],
    ["api*.example.com", "only use *"],
    ["a.*.example.com", "only use *"],
    ["example.com:0", "port"],
    ["example.com:70000", "port"],
    ["example.com:https", "port"],
    ["exa mple.com", 'starts with "exa" where a method belongs'],
    ["GET|FETCH a.test", "where a method belongs"],
    ["-bad.example.com", "not a host name"],
    ["10.0.0.0/40", "CIDR"],
    ["0x7f.1", "not a host name"],
    ["", "empty"],
    ["!", "names no host"],
    ["GET *", "every host; name the host"],
    ["GET 10.0.0.0/8", "method and path rules take a host name"],
    ["10.0.0.5/api/**", "path after an IP address"],
    ["G3T api.test", 'starts with "G3T" where a method'],
    ["GET HEAD api.test", "spaces where none belong"],
    ["api.test/a b", "percent-encode spaces"],
    ["api.test/a?x=1", "query or fragment"],
    ["api.test/a/../b", ". or .. segment"],
    ["api.test/a**", "** inside a path segment"],
    ["api.test/%zz", "% that is not followed by two hex digits"],
    ["api.test/a%2Fb", "encoded /"],
    ["api.test/caf\u00e9", "percent-encode it"],
  ])("%p is refused (%s)", (entry, why) => {
    const parsed = parseAllowEntry(entry);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.error).toContain(why);
  });

  test("the exact messages for bad rules say what is wrong and how to fix it", () => {
    const error = (entry: string) => {
      const parsed = parseAllowEntry(entry);
      return parsed.ok ? "accepted" : parsed.error;
    };
    expect(error("GET *")).toBe('"GET *" limits methods or paths on every host; name the host, such as GET api.example.com/repos/**');
    expect(error("G3T api.test")).toBe(
      '"G3T api.test" starts with "G3T" where a method belongs (GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, several as GET|HEAD); a rule is [!][METHOD ]host[:port][/path], such as api.example.com, !*.corp.example or GET api.github.com/repos/**',
    );
    expect(error("api.test/a?x=1")).toBe('"api.test/a?x=1" has a path that has a query or fragment; rules match the path only, so leave out everything from ? or # on');
  });

  test("comma lists ignore blanks; duplicates collapse", () => {
    expect(splitEgressList(" a.test, ,b.test:443,")).toEqual(["a.test", "b.test:443"]);
    expect(list(["a.test", "A.TEST", "a.test:443"]).rules.length).toBe(2);
    expect(list(["!a.test:80", "!A.test.:80", "a.test"]).rules.map((r) => r.text)).toEqual(["!a.test:80", "a.test"]);
  });

  test("host:port splitting", () => {
    expect(splitHostPort("[::1]:80")).toEqual({ host: "::1", port: "80" });
    expect(splitHostPort("::1")).toEqual({ host: "::1", port: undefined });
    expect(splitHostPort("a.test:1")).toEqual({ host: "a.test", port: "1" });
    expect(splitHostPort("[::1")).toBeUndefined();
  });

  test("names: numeric last labels are addresses in disguise, not names", () => {
    expect(normalizeHostName("2130706433")).toBeUndefined();
    expect(normalizeHostName("127.1")).toBeUndefined();
    expect(normalizeHostName("a.0x7f")).toBeUndefined();
    expect(normalizeHostName("1password.com")).toBe("1password.com");
    expect(normalizeHostName("xn--bcher-kva.example")).toBe("xn--bcher-kva.example");
  });
});

describe("order", () => {
  test("the exceptions example parses: allow one host, deny its domain, allow the rest", () => {
    expect(list(["jira.corp.example", "!*.corp.example", "*"]).rules.map((r) => [r.action, r.kind])).toEqual([
      ["allow", "host"],
      ["deny", "suffix"],
      ["allow", "any"],
    ]);
  });

  test("nothing may follow *: it matches every host", () => {
    expect(listError(["*", "!a.test"])).toBe('"!a.test" comes after "*", which matches every host: the first matching rule wins, so put "*" last');
    expect(listError(["*:443", "a.test"])).toContain("which matches every host on port 443");
    expect(list(["a.test", "*:443", "*:80"]).rules.length).toBe(3);
  });

  test("an exception placed after the rule that decides it in full is refused", () => {
    expect(listError(["!*.corp.example", "jira.corp.example"])).toBe(
      '"jira.corp.example" can never apply: "!*.corp.example" comes first and already decides everything it matches (the first matching rule wins); put "jira.corp.example" before "!*.corp.example"',
    );
    expect(listError(["a.test", "!a.test:443"])).toContain("can never apply");
    expect(listError(["*.corp.example", "!*.eu.corp.example"])).toContain("can never apply");
    expect(listError(["10.0.0.0/8", "!10.1.2.3"])).toContain("can never apply");
    // Not decided in full: another port, a rule limited to some methods, or the same verdict again.
    expect(list(["a.test:443", "!a.test"]).rules.length).toBe(2);
    expect(list(["GET a.test/x", "!a.test"]).rules.length).toBe(2);
    expect(list(["*.corp.example", "jira.corp.example"]).rules.length).toBe(2);
    expect(list(["!10.1.2.3", "10.0.0.0/8"]).rules.length).toBe(2);
  });

  test("agent defaults follow the user's rules, before a closing *, unless the user's rules decide them already", () => {
    expect(mergeEgressEntries(["a.test", "api.anthropic.com:443"], ["api.anthropic.com:443"])).toEqual(["a.test", "api.anthropic.com:443"]);
    expect(mergeEgressEntries(["a.test"], ["api.openai.com:443"])).toEqual(["a.test", "api.openai.com:443"]);
    expect(mergeEgressEntries(["a.test", "*"], ["api.openai.com:443"])).toEqual(["a.test", "api.openai.com:443", "*"]);
    // The user refused the agent's host: the default would never apply, and is left out.
    expect(mergeEgressEntries(["!*.openai.com", "a.test"], ["api.openai.com:443"])).toEqual(["!*.openai.com", "a.test"]);
    for (const merged of [mergeEgressEntries(["a.test", "!*.corp.example", "*"], ["api.openai.com:443"]), mergeEgressEntries(["!*.openai.com", "*"], ["api.openai.com:443"])]) {
      expect(parseAllowList(merged).ok).toBe(true);
    }
  });
});

import { describe, expect, test } from "bun:test";
import { inspect } from "node:util";
import { BUILTIN_CREDENTIALS } from "../../src/core/builtin-credentials.ts";
import {
  classifyClientValue,
  headerValue,
  hostMatches,
  hostPatternBase,
  isShadowed,
  permittedNames,
  PLACEHOLDER,
  placeholderEnv,
  ruleForHost,
  ruleProblem,
  valueProblem,
  type CredentialRule,
} from "../../src/core/credentials.ts";
import { Secret } from "../../src/core/secret.ts";

const rule = (over: Partial<CredentialRule>): CredentialRule => ({
  name: "r",
  hosts: ["api.example.com"],
  header: "authorization",
  format: { kind: "template", template: "Bearer {value}" },
  sources: [{ env: "EXAMPLE_TOKEN" }],
  placeholders: ["EXAMPLE_TOKEN"],
  ...over,
});

describe("built-in rules", () => {
  test("are all valid, and send what each tool sends", () => {
    for (const r of BUILTIN_CREDENTIALS) expect(ruleProblem(r)).toBeUndefined();
    const by = (host: string) => ruleForHost(BUILTIN_CREDENTIALS, host);
    expect(by("api.anthropic.com")?.header).toBe("x-api-key");
    expect(by("api.openai.com")?.format).toEqual({ kind: "template", template: "Bearer {value}" });
    expect(by("generativelanguage.googleapis.com")?.header).toBe("x-goog-api-key");
    expect(by("openrouter.ai")?.header).toBe("authorization");
    expect(by("api.github.com")?.name).toBe("github-api");
    expect(by("github.com")?.format).toEqual({ kind: "basic", username: "x-access-token" });
    expect(by("example.com")).toBeUndefined();
  });

  test("one credential per host: the API key shadows the OAuth token when both exist", () => {
    const [apiKey, oauth] = BUILTIN_CREDENTIALS;
    if (!apiKey || !oauth) throw new Error("built-ins changed");
    expect(isShadowed([apiKey], oauth)).toBe(true);
    expect(isShadowed([], oauth)).toBe(false);
    expect(placeholderEnv([oauth])).toEqual({ CLAUDE_CODE_OAUTH_TOKEN: PLACEHOLDER });
  });

  test("placeholders and the CA's permitted names follow the rules in use", () => {
    const github = BUILTIN_CREDENTIALS.filter((r) => r.name.startsWith("github"));
    expect(placeholderEnv(github)).toEqual({ GH_TOKEN: PLACEHOLDER, GITHUB_TOKEN: PLACEHOLDER });
    expect(permittedNames([...github, rule({ hosts: ["*.corp.example", "corp.example"] })])).toEqual(["api.github.com", "github.com", "corp.example"]);
  });
});

describe("host patterns", () => {
  test("a name matches itself; *.name matches every name below it, not itself", () => {
    expect(hostMatches("api.example.com", "api.example.com")).toBe(true);
    expect(hostMatches("api.example.com", "x.api.example.com")).toBe(false);
    expect(hostMatches("*.example.com", "a.example.com")).toBe(true);
    expect(hostMatches("*.example.com", "a.b.example.com")).toBe(true);
    expect(hostMatches("*.example.com", "example.com")).toBe(false);
    expect(hostMatches("*.example.com", "badexample.com")).toBe(false);
  });

  test("patterns are names or *.names: no addresses, ports, bare TLDs", () => {
    expect(hostPatternBase("*.example.com")).toBe("example.com");
    for (const bad of ["10.0.0.1", "api.example.com:443", "com", "*.com", "*", "a..b", "0x7f.1", "exa mple.com"]) expect(hostPatternBase(bad)).toBeUndefined();
  });
});

describe("rule checks", () => {
  test("refuse what could break or smuggle requests, or lose the value", () => {
    expect(ruleProblem(rule({}))).toBeUndefined();
    expect(ruleProblem(rule({ name: "Bad Name" }))).toContain("lower-case");
    expect(ruleProblem(rule({ hosts: [] }))).toContain("no hosts");
    expect(ruleProblem(rule({ hosts: ["10.0.0.1"] }))).toContain("IP addresses");
    expect(ruleProblem(rule({ header: "X-Api-Key" }))).toContain("lower-case header");
    for (const header of ["host", "content-length", "transfer-encoding", "connection", "proxy-authorization"]) expect(ruleProblem(rule({ header }))).toContain("cannot set");
    expect(ruleProblem(rule({ format: { kind: "template", template: "Bearer" } }))).toContain("{value}");
    expect(ruleProblem(rule({ format: { kind: "template", template: "{value} {value}" } }))).toContain("exactly once");
    expect(ruleProblem(rule({ format: { kind: "template", template: "Bearer {value}\r\nX: y" } }))).toContain("printable");
    expect(ruleProblem(rule({ format: { kind: "basic", username: "a:b" } }))).toContain("without ':'");
    expect(ruleProblem(rule({ sources: [] }))).toContain("no source");
    expect(ruleProblem(rule({ sources: [{ command: [] }] }))).toContain("empty command");
    expect(ruleProblem(rule({ placeholders: ["1X"] }))).toContain("variable name");
  });

  test("values must be one token of printable ASCII (a line break would add headers)", () => {
    expect(valueProblem("sk-ant-abc_123")).toBeUndefined();
    expect(valueProblem("")).toContain("empty");
    expect(valueProblem("a\r\nX-Evil: 1")).toContain("line breaks");
    expect(valueProblem("two words")).toContain("spaces");
    expect(valueProblem("clé")).toContain("ASCII");
  });
});

describe("header values", () => {
  test("templates and Basic", () => {
    expect(headerValue({ kind: "template", template: "Bearer {value}" }, "t0k")).toBe("Bearer t0k");
    expect(headerValue({ kind: "template", template: "{value}" }, "$&$1")).toBe("$&$1");
    expect(headerValue({ kind: "basic", username: "x-access-token" }, "ghp_x")).toBe(`Basic ${Buffer.from("x-access-token:ghp_x").toString("base64")}`);
  });

  test("what the client had sent is classified, for the audit", () => {
    expect(classifyClientValue([])).toBe("absent");
    expect(classifyClientValue([PLACEHOLDER])).toBe("placeholder");
    expect(classifyClientValue([`Bearer ${PLACEHOLDER}`])).toBe("placeholder");
    expect(classifyClientValue([`Basic ${btoa(`x-access-token:${PLACEHOLDER}`)}`])).toBe("placeholder");
    expect(classifyClientValue(["Bearer something-else"])).toBe("other");
    expect(classifyClientValue([PLACEHOLDER, "other"])).toBe("other");
  });
});

describe("Secret", () => {
  test("shows its value only through reveal()", () => {
    const s = new Secret("sk-very-secret");
    const shown = [`${s}`, String(s), JSON.stringify({ s }), inspect(s), inspect({ nested: { s } }, { depth: 5, showHidden: true }), Object.keys(s).join()];
    for (const text of shown) expect(text).not.toContain("sk-very-secret");
    expect(s.reveal()).toBe("sk-very-secret");
  });
});

import { collectCertificates, splitCertificates } from "../../src/core/ca-bundle.ts";
import { describe, expect, test } from "bun:test";
import { AGENTS, detectAgent } from "../../src/core/agents.ts";
import { chooseImage } from "../../src/core/image-choice.ts";
import {
  buildableAgents,
  buildFailureHint,
  buildFailureMessage,
  certificateFiles,
  checkVersionPin,
  DEFAULT_BUILD_BASE,
  describeStep,
  installedVersion,
  isRecipeTag,
  missingBaseMessage,
  noRecipeMessage,
  RECIPES,
  recipeAgentOf,
  recipeFor,
  recipeHash,
  recipeImageName,
  recipePlaceholder,
  recipeTextHash,
  shortImageName,
  shortReason,
  unsupportedFor,
  VERSION_FILE,
} from "../../src/core/recipes.ts";

const PACKAGES: Record<string, string> = {
  claude: "@anthropic-ai/claude-code",
  codex: "@openai/codex",
  gemini: "@google/gemini-cli",
  opencode: "opencode-ai",
  kilocode: "@kilocode/cli",
  aider: "aider-chat",
  amp: "@sourcegraph/amp",
};

/** The instructions of a Dockerfile, continuation lines joined, comments dropped. */
function instructions(text: string): string[] {
  return text
    .replace(/\\\n/g, " ")
    .split("\n")
    .filter((line) => line.trim() !== "" && !line.startsWith("#"));
}

describe("recipes", () => {
  test("every agent profile but goose has one, with the real package", () => {
    const agents = AGENTS.filter((p) => p.kind === "agent").map((p) => p.name);
    expect(buildableAgents().sort()).toEqual(agents.filter((a) => a !== "goose").sort());
    for (const [agent, pkg] of Object.entries(PACKAGES)) expect(recipeFor(agent)?.package).toBe(pkg);
    expect(recipeFor("aider")?.installer).toBe("pip");
    expect(recipeFor("claude")?.installer).toBe("npm");
    expect(recipeFor("kilocode")?.command).toBe("kilo");
  });

  for (const recipe of Object.values(RECIPES)) {
    describe(recipe.agent, () => {
      const lines = instructions(recipe.text);

      test("is built on ARG BASE, with the default base named", () => {
        expect(lines[0]).toBe(`ARG BASE=${DEFAULT_BUILD_BASE}`);
        expect(lines[1]).toBe("FROM ${BASE}");
        expect(lines.filter((l) => l.startsWith("FROM "))).toHaveLength(1);
      });

      test("has no USER line (sandbox runs as the caller's uid)", () => {
        expect(lines.some((l) => /^USER\b/.test(l))).toBe(false);
      });

      test("installs the CA files before anything is downloaded", () => {
        const copy = lines.findIndex((l) => l.startsWith("COPY ca/ /usr/local/share/ca-certificates/"));
        const firstDownload = lines.findIndex((l) => /apt-get update|npm install|pip install/.test(l));
        expect(copy).toBeGreaterThan(0);
        expect(copy).toBeLessThan(firstDownload);
        // update-ca-certificates runs before apt-get in the same step.
        const prepare = lines[firstDownload] as string;
        expect(prepare.indexOf("update-ca-certificates")).toBeLessThan(prepare.indexOf("apt-get update"));
      });

      test("installs git and ca-certificates only when missing, with apt-get", () => {
        expect(recipe.text).toContain('command -v git >/dev/null 2>&1 || missing="git"');
        expect(recipe.text).toContain('[ -s /etc/ssl/certs/ca-certificates.crt ] || missing="$missing ca-certificates"');
        expect(recipe.text).toContain('if [ -n "$missing" ]; then');
        expect(recipe.text).toContain("apt-get install -y -qq --no-install-recommends $missing");
      });

      test("points the install at the CAs", () => {
        const install = lines.find((l) => /npm install|pip install/.test(l)) as string;
        for (const name of ["NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "PIP_CERT"]) expect(install).toContain(name);
      });

      test("pins the version only when asked, and records the installed one", () => {
        expect(lines).toContain("ARG VERSION=");
        const pin = recipe.installer === "npm" ? `"${recipe.package}\${VERSION:+@$VERSION}"` : `"${recipe.package}\${VERSION:+==$VERSION}"`;
        expect(recipe.text).toContain(pin);
        expect(recipe.text).toContain(`>${VERSION_FILE}`);
      });

      test("turns off the agent's self-update", () => {
        expect(recipe.selfUpdate).not.toBe("");
        const [first] = recipe.selfUpdate.split(";");
        const key = (first as string).split(/[=:]/)[0] as string;
        expect(recipe.text).toContain(key);
      });
    });
  }

  test("self-update switches per agent", () => {
    expect(RECIPES.claude?.text).toContain("ENV DISABLE_AUTOUPDATER=1");
    expect(RECIPES.opencode?.text).toContain("ENV OPENCODE_DISABLE_AUTOUPDATE=1");
    expect(RECIPES.kilocode?.text).toContain("ENV KILO_DISABLE_AUTOUPDATE=1");
    expect(RECIPES.amp?.text).toContain("ENV AMP_SKIP_UPDATE_CHECK=1");
    expect(RECIPES.aider?.text).toContain("ENV AIDER_CHECK_UPDATE=false");
    expect(RECIPES.codex?.text).toContain("check_for_update_on_startup = false' >/etc/codex/config.toml");
    expect(RECIPES.gemini?.text).toContain(`'{"general":{"enableAutoUpdate":false,"enableAutoUpdateNotification":false}}' >/etc/gemini-cli/settings.json`);
  });

  test("npm agents check for Node 22 and npm; aider gets python3-venv and a venv", () => {
    expect(RECIPES.claude?.text).toContain('[ "$major" -lt 22 ]');
    expect(RECIPES.aider?.text).not.toContain('[ "$major" -lt 22 ]');
    expect(RECIPES.aider?.text).toContain('missing="$missing python3-venv"');
    expect(RECIPES.aider?.text).toContain("python3 -m venv /opt/aider");
    expect(RECIPES.aider?.text).toContain("ln -sf /opt/aider/bin/aider /usr/local/bin/aider");
  });

  test("goose has no recipe, and says why", () => {
    expect(recipeFor("goose")).toBeUndefined();
    expect(unsupportedFor("goose")?.reason).toContain("npm");
    const { message, hint } = noRecipeMessage("goose");
    expect(message).toContain("no recipe for goose");
    expect(hint).toContain("--image");
    expect(hint).toContain("images.goose");
    expect(noRecipeMessage("python").hint).toContain("claude, codex, gemini");
    expect(recipeFor("constructor")).toBeUndefined();
  });
});

describe("names and hashes", () => {
  const recipe = RECIPES.claude as NonNullable<(typeof RECIPES)["claude"]>;
  const inputs = { recipe, baseId: "sha256:aaa", version: "", certificates: [] as string[] };

  test("the hash covers the recipe text, the base's ID, the version and the CAs", () => {
    const h = recipeHash(inputs);
    expect(h).toMatch(/^[0-9a-f]{64}$/);
    expect(recipeHash({ ...inputs })).toBe(h);
    expect(recipeHash({ ...inputs, recipe: { text: `${recipe.text}#` } })).not.toBe(h);
    expect(recipeHash({ ...inputs, baseId: "sha256:bbb" })).not.toBe(h);
    expect(recipeHash({ ...inputs, version: "1.0.0" })).not.toBe(h);
    expect(recipeHash({ ...inputs, certificates: ["-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n"] })).not.toBe(h);
    // No field runs into the next.
    expect(recipeHash({ ...inputs, baseId: "sha256:a", version: "aa" })).not.toBe(recipeHash({ ...inputs, baseId: "sha256:aa", version: "a" }));
  });

  test("the recipe text alone has its own hash", () => {
    expect(recipeTextHash(recipe)).toMatch(/^[0-9a-f]{64}$/);
    expect(recipeTextHash(recipe)).not.toBe(recipeTextHash(RECIPES.codex as never));
  });

  test("names: sandbox/<agent>:<12 hex>", () => {
    const h = recipeHash(inputs);
    expect(recipeImageName("claude", h)).toBe(`sandbox/claude:${h.slice(0, 12)}`);
    expect(isRecipeTag("claude", `sandbox/claude:${h.slice(0, 12)}`)).toBe(true);
    expect(isRecipeTag("claude", `docker.io/sandbox/claude:${h.slice(0, 12)}`)).toBe(true);
    expect(isRecipeTag("claude", `localhost/sandbox/claude:${h.slice(0, 12)}`)).toBe(true);
    expect(isRecipeTag("claude", "sandbox/claude:latest")).toBe(false);
    expect(isRecipeTag("claude", `sandbox/codex:${h.slice(0, 12)}`)).toBe(false);
    expect(isRecipeTag("claude", `evil/sandbox/claude:${h.slice(0, 12)}`)).toBe(false);
  });

  test("the profile's placeholder is no valid reference and maps back to its agent", () => {
    expect(recipePlaceholder("claude")).toBe("sandbox/claude:<recipe>");
    expect(recipeAgentOf("sandbox/claude:<recipe>")).toBe("claude");
    expect(recipeAgentOf("sandbox/claude:0123456789ab")).toBeUndefined();
    expect(recipeAgentOf("ghcr.io/sandbox/claude:<recipe>")).toBeUndefined();
    expect(recipeAgentOf("node:22")).toBeUndefined();
    // The engine would refuse it rather than pull anything.
    expect(/^[\w][\w.-]{0,127}$/.test("<recipe>")).toBe(false);
  });

  test("an agent's built-in default is the placeholder, and the rule says how it is settled; a chosen image wins", () => {
    const claude = detectAgent(["claude"]);
    const choice = chooseImage({ images: {}, agent: claude, command: "claude" });
    expect(choice.image).toBe("sandbox/claude:<recipe>");
    expect(choice.rule).toContain("sandbox/claude:<recipe hash>, found or built when the run reaches the engine");
    expect(chooseImage({ images: { claude: "my/claude:1" }, agent: claude, command: "claude" }).image).toBe("my/claude:1");
    expect(chooseImage({ flag: "x:1", agent: claude, command: "claude" }).image).toBe("x:1");
    expect(chooseImage({ agentImage: "y:1", agent: claude, command: "claude" }).image).toBe("y:1");
    expect(chooseImage({ images: {}, agent: detectAgent(["python3"]), command: "python3" }).rule).toBe("built-in default for Python (python)");
  });

  test("engines' spellings of a name", () => {
    expect(shortImageName("docker.io/sandbox/claude:abc")).toBe("sandbox/claude:abc");
    expect(shortImageName("localhost/sandbox/claude:abc")).toBe("sandbox/claude:abc");
    expect(shortImageName("docker.io/library/node:22")).toBe("node:22");
    expect(shortImageName("sandbox/claude:abc")).toBe("sandbox/claude:abc");
    expect(shortImageName("ghcr.io/x/y:1")).toBe("ghcr.io/x/y:1");
  });

  test("--version takes versions and tags, nothing else", () => {
    for (const ok of ["1.0.3", "2.1.332", "0.0.1790142911-g7618fb", "next", "1.0.0+build.1"]) expect(checkVersionPin(ok)).toBeUndefined();
    for (const bad of ["", "1.0; rm -rf /", "$(id)", "-1", "a b", ">=1.0", "x".repeat(65)]) expect(checkVersionPin(bad)).toBeString();
  });

  test("the installed version as a label", () => {
    expect(installedVersion("2.1.332\n")).toBe("2.1.332");
    expect(installedVersion(undefined)).toBe("unknown");
    expect(installedVersion("")).toBe("unknown");
    expect(installedVersion("1.0\nextra")).toBe("unknown");
  });
});

describe("CA files", () => {
  const cert = (body: string) => `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----`;

  test("a bundle is split into one certificate per file", () => {
    const bundle = `# comment\n${cert("AAA")}\n\n${cert("BBB")}\r\n${cert("CCC")}\r\n`.replace(/BBB/, "BB\r\nB");
    const certs = splitCertificates(bundle);
    expect(certs).toHaveLength(3);
    expect(certs[1]).toBe(`${cert("BB\nB")}\n`);
    expect(certs.every((c) => !c.includes("\r"))).toBe(true);
    expect(certificateFiles(certs).map((f) => f.path)).toEqual(["ca/sandbox-1.crt", "ca/sandbox-2.crt", "ca/sandbox-3.crt"]);
  });

  test("files are collected in order, each certificate once", () => {
    const out = collectCertificates([
      { path: "/a.pem", text: `${cert("AAA")}\n${cert("BBB")}` },
      { path: "/b.pem", text: cert("AAA") },
      { path: "/c.pem", text: cert("CCC") },
    ]);
    expect(out).toEqual({ certificates: [`${cert("AAA")}\n`, `${cert("BBB")}\n`, `${cert("CCC")}\n`] });
  });

  test("a file without a certificate is an error naming it", () => {
    const out = collectCertificates([{ path: "/etc/corp.der", text: "\u0030\u0082binary" }]);
    expect(out).toEqual({ error: expect.stringContaining("/etc/corp.der holds no PEM certificate") });
  });
});

describe("messages", () => {
  test("the refusal names both ways out", () => {
    const { message, hint } = missingBaseMessage({ agent: "claude", base: "node:22-bookworm-slim", why: "no such host", pull: "missing" });
    expect(message).toContain("no claude image on this engine");
    expect(message).toContain("node:22-bookworm-slim");
    expect(message).toContain("no such host");
    expect(hint).toContain("sandbox image build claude --base my/node:22");
    expect(hint).toContain("build.base");
    expect(hint).toContain("sandbox image save sandbox/claude:TAG claude.tar");
    expect(hint).toContain("sandbox image load claude.tar");
    expect(missingBaseMessage({ agent: "claude", base: "b", why: "", pull: "never" }).message).toContain("--pull never forbids pulling it");
  });

  test("a failed step: its name, the engine's reason without the RUN line, the output tail", () => {
    const step = `step 7/7 (RUN set -eu; if [ -s /x ]; then export A=1; fi; npm install -g --no-audit "@openai/codex\${VERSION:+@$VERSION}"; node -p 1)`;
    expect(describeStep(step)).toBe("step 7/7 (npm install -g @openai/codex)");
    expect(describeStep('step 5/6 (RUN set -eu; pip3 x; /opt/aider/bin/pip install --no-cache-dir "aider-chat${VERSION:+==$VERSION}")')).toBe("step 5/6 (pip install aider-chat)");
    expect(describeStep("step 5/7 (RUN set -eu; quiet update-ca-certificates; apt-get update)")).toContain("CA certificates");
    expect(describeStep("step 2/7 (FROM ${BASE})")).toBe("step 2/7 (FROM ${BASE})");
    expect(shortReason("The command '/bin/sh -c set -eu;\n npm install' returned a non-zero code: 1")).toBe("the step exited with code 1");
    expect(shortReason('building at STEP "RUN set -eu; npm install": while running runtime: exit status 3\n')).toBe("the step exited with code 3");
    const message = buildFailureMessage({ agent: "codex", step, error: "The command '/bin/sh -c x' returned a non-zero code: 1", tail: ["npm error code SELF_SIGNED_CERT_IN_CHAIN"] });
    expect(message).toBe("building the codex image failed at step 7/7 (npm install -g @openai/codex): the step exited with code 1\n  last output:\n    npm error code SELF_SIGNED_CERT_IN_CHAIN");
  });

  test("the hint follows the output", () => {
    expect(buildFailureHint("npm error code SELF_SIGNED_CERT_IN_CHAIN", "codex")).toContain("--ca-cert");
    expect(buildFailureHint("pip: CERTIFICATE_VERIFY_FAILED", "aider")).toContain("--ca-cert");
    expect(buildFailureHint("npm error code ENOTFOUND", "codex")).toContain("sandbox image save");
    expect(buildFailureHint("sandbox: this recipe needs a base image with Node.js 22", "codex")).toContain("--base");
    expect(buildFailureHint("npm error notarget No matching version found for @kilocode/cli@7.7.9.", "kilocode")).toContain("--version");
    expect(buildFailureHint("something else", "codex")).toContain("sandbox image build codex");
  });
});

import { describe, expect, test } from "bun:test";
import { detectAgent } from "../../src/core/agents.ts";
import { chooseImage } from "../../src/core/image-choice.ts";

const python = detectAgent(["python3"]);
const claude = detectAgent(["claude"]);
const generic = detectAgent(["make"]);

const images = {
  python3: "img/python3",
  python: "img/python",
  py: "img/py",
  p: "img/p",
  default: "img/default",
};

describe("chooseImage precedence", () => {
  test("1. --image flag wins over everything", () => {
    expect(
      chooseImage({ flag: "flag/img", workspaceImage: "ws/img", agentImage: "agent/img", images, agent: python, command: "python3" }),
    ).toEqual({ image: "flag/img", rule: "--image flag" });
  });

  test("the workspace file's image cannot replace one the user pinned for the agent or command (with a note)", () => {
    const pinnedAgent = chooseImage({ workspaceImage: "ws/img", agentImage: "agent/img", images, agent: python, command: "python3" });
    expect(pinnedAgent.image).toBe("agent/img");
    expect(pinnedAgent.rule).toBe("agents.python.image");
    expect(pinnedAgent.note).toContain("ignored image ws/img from .sandbox.yml");
    expect(pinnedAgent.note).toContain("--image ws/img");
    const pinnedCommand = chooseImage({ workspaceImage: "ws/img", images, agent: python, command: "python3" });
    expect(pinnedCommand).toMatchObject({ image: "img/python3", rule: 'images.python3 (exact match on "python3")' });
    expect(pinnedCommand.note).toContain("you pinned img/python3");
    const pinnedAgentName = chooseImage({ workspaceImage: "ws/img", images: { claude: "mine/claude" }, agent: claude, command: "claude" });
    expect(pinnedAgentName.image).toBe("mine/claude");
  });

  test("the workspace file's image outranks the user's broader choices (prefix, default, built-in), with no note", () => {
    const { python3: _a, python: _b, ...broad } = images;
    expect(chooseImage({ workspaceImage: "ws/img", images: broad, agent: python, command: "python3" })).toEqual({ image: "ws/img", rule: "image in .sandbox.yml" });
    expect(chooseImage({ workspaceImage: "ws/img", agent: claude, command: "claude" })).toEqual({ image: "ws/img", rule: "image in .sandbox.yml" });
    // The same image as the pin: nothing was ignored.
    expect(chooseImage({ workspaceImage: "agent/img", agentImage: "agent/img", agent: claude, command: "claude" }).note).toBeUndefined();
  });

  test("3. agents.<name>.image", () => {
    expect(chooseImage({ agentImage: "agent/img", images, agent: claude, command: "claude" })).toEqual({
      image: "agent/img",
      rule: "agents.claude.image",
    });
  });

  test("4a. exact match on the command", () => {
    expect(chooseImage({ images, agent: python, command: "python3" })).toEqual({
      image: "img/python3",
      rule: 'images.python3 (exact match on "python3")',
    });
  });

  test("4b. exact match on the agent name", () => {
    const { python3: _, ...rest } = images;
    expect(chooseImage({ images: rest, agent: python, command: "python3" })).toEqual({
      image: "img/python",
      rule: 'images.python (exact match on agent "python")',
    });
  });

  test("5. longest prefix", () => {
    const { python3: _a, python: _b, ...rest } = images;
    expect(chooseImage({ images: rest, agent: python, command: "python3" })).toEqual({
      image: "img/py",
      rule: 'images.py (prefix of "python3")',
    });
  });

  test("5. a prefix of the agent name counts too", () => {
    expect(chooseImage({ images: { kilo: "img/kilo" }, agent: detectAgent(["kilocode"]), command: "kilocode" }).rule).toBe(
      'images.kilo (prefix of "kilocode")',
    );
    expect(chooseImage({ images: { rus: "img/rust" }, agent: detectAgent(["cargo"]), command: "cargo" })).toEqual({
      image: "img/rust",
      rule: 'images.rus (prefix of agent "rust")',
    });
  });

  test("6. images.default", () => {
    expect(chooseImage({ images: { default: "img/default", node: "img/node" }, agent: python, command: "python3" })).toEqual({
      image: "img/default",
      rule: "images.default",
    });
  });

  test("7. the profile's built-in image", () => {
    expect(chooseImage({ agent: python, command: "python3" })).toEqual({
      image: "python:3.12-slim",
      rule: "built-in default for Python (python)",
    });
    expect(chooseImage({ images: {}, agent: generic, command: "make" }).image).toBe("debian:bookworm-slim");
  });

  test("default is never used as a prefix", () => {
    expect(chooseImage({ images: { default: "img/default" }, agent: generic, command: "defaultify" }).rule).toBe("images.default");
  });

  test("empty values are treated as unset", () => {
    expect(chooseImage({ flag: "", workspaceImage: " ", images: { python3: "" }, agent: python, command: "python3" }).image).toBe(
      "python:3.12-slim",
    );
  });

  test("inherited object keys never match", () => {
    expect(chooseImage({ images: {}, agent: generic, command: "constructor" }).image).toBe("debian:bookworm-slim");
    expect(chooseImage({ images: {}, agent: generic, command: "toString" }).image).toBe("debian:bookworm-slim");
  });
});

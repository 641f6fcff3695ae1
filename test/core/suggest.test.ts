import { describe, expect, test } from "bun:test";
import { closestWord, editDistance } from "../../src/core/suggest.ts";

const COMMAND_NAMES = ["run", "version", "config", "trust", "cache", "ps", "inspect", "prune", "doctor", "image", "completion"];

describe("did you mean", () => {
  test("edit distance counts a swap of neighbours as one edit", () => {
    expect(editDistance("rnu", "run")).toBe(1);
    expect(editDistance("pss", "ps")).toBe(1);
    expect(editDistance("", "abc")).toBe(3);
    expect(editDistance("same", "same")).toBe(0);
    expect(editDistance("kitten", "sitting")).toBe(3);
  });

  test.each([
    ["rnu", "run"],
    ["pss", "ps"],
    ["confg", "config"],
    ["insepct", "inspect"],
    ["prnue", "prune"],
    ["doctr", "doctor"],
    ["Run", "run"],
    ["completoin", "completion"],
  ])("%p suggests %p", (word, expected) => {
    expect(closestWord(word, COMMAND_NAMES)).toBe(expected);
  });

  test.each(["python3", "npm", "bash", "x", "hello-world"])("%p is close to no command", (word) => {
    expect(closestWord(word, COMMAND_NAMES)).toBeUndefined();
  });
});

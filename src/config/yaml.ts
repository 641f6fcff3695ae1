import { isMap, isNode, isScalar, isSeq, parseDocument, type YAMLError } from "yaml";
import { fileError } from "./errors.ts";

/**
 * YAML text -> plain data, or a ConfigError naming the file, the line and
 * (when the parser got far enough to tell) the key the problem sits under.
 */

/** Generous for hand-written config, tiny next to a "billion laughs" document. */
const MAX_ALIASES = 100;

/** The key path whose entry spans `offset`, e.g. ["security", "memory"]. */
function keyPathAt(node: unknown, offset: number, path: readonly string[] = []): readonly string[] {
  if (isMap(node)) {
    for (const pair of node.items) {
      const start = isNode(pair.key) ? pair.key.range?.[0] : undefined;
      const end = isNode(pair.value) ? pair.value.range?.[2] : isNode(pair.key) ? pair.key.range?.[2] : undefined;
      if (start !== undefined && end !== undefined && offset >= start && offset <= end) {
        const name = isScalar(pair.key) ? String(pair.key.value) : "?";
        return keyPathAt(pair.value, offset, [...path, name]);
      }
    }
  } else if (isSeq(node)) {
    for (const [index, item] of node.items.entries()) {
      const range = isNode(item) ? item.range : undefined;
      if (range && offset >= range[0] && offset <= range[2]) return keyPathAt(item, offset, [...path, String(index)]);
    }
  }
  return path;
}

function describeError(error: YAMLError, contents: unknown): string {
  // With prettyErrors the message is "<what> at line L, column C:\n\n<excerpt>".
  const first = (error.message.split("\n")[0] ?? error.code).replace(/:$/, "");
  let path: readonly string[] = [];
  try {
    path = keyPathAt(contents, error.pos[0]);
  } catch {
    // Locating the key is a courtesy; the line and column are already there.
  }
  return path.length > 0 ? `${path.join(".")}: invalid YAML: ${first}` : `invalid YAML: ${first}`;
}

export function parseYaml(text: string, file: string, hint?: string): unknown {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw fileError(file, doc.errors.map((error) => describeError(error, doc.contents)), hint);
  }
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (error) {
    throw fileError(file, [`invalid YAML: ${error instanceof Error ? error.message : String(error)}`], hint);
  }
}

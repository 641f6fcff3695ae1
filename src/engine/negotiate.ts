import { engineFlavor } from "../core/engine-dialect.ts";
import { refusalLine, type Refusal } from "../core/engine-refusal.ts";
import { EngineError } from "../core/errors.ts";
import type { EngineClient } from "./client.ts";

/** The newest Engine API version sandbox speaks; older engines are met at theirs. */
export const CLIENT_API_VERSION = "1.44";
/** The oldest we accept: Debian's Docker 20.10 and Podman 4 speak 1.41. */
export const MIN_API_VERSION = "1.40";

export interface PingResult {
  apiVersion: string | undefined;
  /** "Docker" or "Podman/…" from the Server header: lets callers adapt. */
  server: string | undefined;
  osType: string | undefined;
}

export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** The version to pin: the lower of ours and the engine's, as the docker CLI does. */
export function negotiatedVersion(engineVersion: string | undefined): string {
  if (!engineVersion || !/^\d+\.\d+$/.test(engineVersion)) return MIN_API_VERSION;
  return compareVersions(engineVersion, CLIENT_API_VERSION) < 0 ? engineVersion : CLIENT_API_VERSION;
}

/** GET /_ping, then pin the API version on the client. */
export async function negotiate(engine: EngineClient): Promise<PingResult> {
  const res = await engine.stream({ method: "GET", path: "/_ping", ok: [200] });
  res.resume();
  const header = (name: string) => {
    const v = res.headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
  const result: PingResult = { apiVersion: header("api-version"), server: header("server"), osType: header("ostype") };
  if (result.apiVersion === undefined) {
    // Every engine since API 1.25 names its version here; a web server or proxy answering 200 to anything does not.
    const refusal: Refusal = { method: "GET", path: "/_ping", status: res.statusCode, text: "the answer has no Api-Version header", flavor: engineFlavor(result.server), address: engine.address.url };
    throw new EngineError(refusalLine(refusal), { ...(res.statusCode === undefined ? {} : { statusCode: res.statusCode }), refusal });
  }
  engine.pinVersion(negotiatedVersion(result.apiVersion));
  engine.server = result.server;
  return result;
}

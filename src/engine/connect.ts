import { EngineError } from "../core/errors.ts";
import { EngineClient } from "./client.ts";
import type { EngineChoice } from "./discovery.ts";
import { negotiate, type PingResult } from "./negotiate.ts";
import { readEngineInfo } from "./info.ts";
import type { EngineInfo } from "../core/preflight.ts";

export interface Connected {
  engine: EngineClient;
  ping: PingResult;
  choice: EngineChoice;
  /** GET /info, when asked for up front (ConnectOptions.info). */
  info?: Promise<EngineInfo>;
}

export interface ConnectOptions {
  /**
   * Ask for /info alongside the ping rather than after it (unversioned, so it
   * need not wait for the negotiation): `run` checks the engine before every
   * container, and this takes that round trip off its critical path.
   */
  info?: boolean;
}

/** Open a client for the chosen engine and negotiate the API version (one /_ping). */
export async function connectEngine(choice: EngineChoice, options: ConnectOptions = {}): Promise<Connected> {
  const engine = new EngineClient({ address: choice.address, ...(choice.tls ? { tls: choice.tls } : {}), ...(choice.ssh ? { ssh: choice.ssh } : {}) });
  const info = options.info ? readEngineInfo(engine) : undefined;
  info?.catch(() => {});
  try {
    const ping = await negotiate(engine);
    return { engine, ping, choice, ...(info ? { info } : {}) };
  } catch (err) {
    engine.close();
    if (err instanceof EngineError && err.statusCode === undefined && choice.tried) {
      // Nothing was configured and no socket exists: say where we looked.
      throw new EngineError(`no container engine found (looked for ${choice.tried.join(", ")})`, {
        hint: "Start Docker or Podman's API service (podman system service), or point DOCKER_HOST / --host / a docker context at an engine.",
        cause: err,
      });
    }
    throw err;
  }
}

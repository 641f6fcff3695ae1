import { EngineError } from "../core/errors.ts";
import { EngineClient } from "./client.ts";
import type { EngineChoice } from "./discovery.ts";
import { negotiate, type PingResult } from "./negotiate.ts";

export interface Connected {
  engine: EngineClient;
  ping: PingResult;
  choice: EngineChoice;
}

/** Open a client for the chosen engine and negotiate the API version (one /_ping). */
export async function connectEngine(choice: EngineChoice): Promise<Connected> {
  const engine = new EngineClient({ address: choice.address, ...(choice.tls ? { tls: choice.tls } : {}), ...(choice.ssh ? { ssh: choice.ssh } : {}) });
  try {
    const ping = await negotiate(engine);
    return { engine, ping, choice };
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

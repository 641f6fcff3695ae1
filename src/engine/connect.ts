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
  const engine = new EngineClient({ address: choice.address, ...(choice.tls ? { tls: choice.tls } : {}) });
  const ping = await negotiate(engine);
  return { engine, ping, choice };
}

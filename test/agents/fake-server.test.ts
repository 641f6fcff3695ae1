/**
 * The fake provider APIs (test/fixtures/agent-apis/server.ts) on their own,
 * without any agent CLI: the wire formats the agents rely on, the recording,
 * the proxy trap. Loopback only.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect } from "node:net";
import { DEFAULT_TEXT, type FakeProviders, startFakeProviders } from "../fixtures/agent-apis/server.ts";

let fake: FakeProviders;
beforeAll(async () => {
  fake = await startFakeProviders({ host: "127.0.0.1", anthropicText: "custom anthropic answer here" });
});
afterAll(() => fake?.close());

interface SseEvent {
  event: string | null;
  data: any;
}

function parseSse(text: string): SseEvent[] {
  return text
    .split(/\r?\n\r?\n/)
    .filter((b) => b.trim())
    .map((block) => {
      let event: string | null = null;
      let data = "";
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith("event: ")) event = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      return { event, data: JSON.parse(data) };
    });
}

/** A response's JSON body, untyped (the tests check its shape). */
async function body(res: Response | Promise<Response>): Promise<any> {
  return (await res).json();
}

async function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${fake.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
}

test("listens on the given host, on a free port when none is given", () => {
  expect(fake.port).toBeGreaterThan(0);
  expect(fake.url).toBe(`http://127.0.0.1:${fake.port}`);
});

describe("Anthropic Messages API", () => {
  test("streams message_start .. message_stop with the configured text", async () => {
    const res = await post(
      "/v1/messages?beta=true",
      { model: "claude-x", max_tokens: 10, stream: true, messages: [{ role: "user", content: "hi" }] },
      { "x-api-key": "k1", "anthropic-version": "2023-06-01" },
    );
    expect(res.headers.get("content-type")).toStartWith("text/event-stream");
    const events = parseSse(await res.text());
    for (const e of events) expect(e.event).toBe(e.data.type);
    const names = events.map((e) => e.event).filter((n) => n !== "ping" && n !== "content_block_delta");
    expect(names).toEqual(["message_start", "content_block_start", "content_block_stop", "message_delta", "message_stop"]);
    const text = events
      .filter((e) => e.event === "content_block_delta")
      .map((e) => (e.data.delta.type === "text_delta" ? e.data.delta.text : ""))
      .join("");
    expect(text).toBe("custom anthropic answer here");
    expect(events[0]!.data.message.model).toBe("claude-x");
    expect(events.find((e) => e.event === "message_delta")!.data.delta.stop_reason).toBe("end_turn");
    const rec = fake.requests.at(-1)!;
    expect(rec).toMatchObject({ provider: "anthropic", method: "POST", path: "/v1/messages?beta=true" });
    expect(rec.headers["x-api-key"]).toBe("k1");
    expect((rec.body as { model: string }).model).toBe("claude-x");
  });

  test("answers JSON when stream is false; counts tokens; lists models; answers the preflight", async () => {
    const msg = await body(post("/v1/messages", { model: "m", max_tokens: 5, messages: [] }));
    expect(msg).toMatchObject({ type: "message", role: "assistant", stop_reason: "end_turn" });
    expect(msg.content).toEqual([{ type: "text", text: "custom anthropic answer here" }]);
    const count = await body(post("/v1/messages/count_tokens", { model: "m", messages: [{ role: "user", content: "x" }] }));
    expect(count.input_tokens).toBeGreaterThan(0);
    const models = await body(fetch(`${fake.url}/v1/models`, { headers: { "anthropic-version": "2023-06-01" } }));
    expect(models.data[0].type).toBe("model");
    expect((await fetch(`${fake.url}/api/hello`, { method: "HEAD" })).status).toBe(200);
  });
});

describe("OpenAI Responses API", () => {
  const user = { type: "message", role: "user", content: [{ type: "input_text", text: "hi" }] };

  async function stream(body: unknown): Promise<SseEvent[]> {
    const res = await post("/v1/responses", { model: "gpt-x", stream: true, ...(body as object) }, { authorization: "Bearer k2" });
    expect(res.headers.get("content-type")).toStartWith("text/event-stream");
    return parseSse(await res.text());
  }

  const doneItem = (events: SseEvent[]) => events.find((e) => e.event === "response.output_item.done")!.data.item;

  test("calls the classic exec_command function tool first, then answers with its output", async () => {
    const tools = [{ type: "function", name: "exec_command", parameters: { type: "object" } }];
    const first = await stream({ input: [user], tools });
    expect(first[0]!.event).toBe("response.created");
    expect(first.at(-1)!.event).toBe("response.completed");
    const call = doneItem(first);
    expect(call).toMatchObject({ type: "function_call", name: "exec_command" });
    expect(JSON.parse(call.arguments).cmd).toContain("echo tool-ran > tool-output.txt");
    const before = fake.toolOutputs.length;
    const second = await stream({
      input: [user, call, { type: "function_call_output", call_id: call.call_id, output: "tool-ran\n" }],
      tools,
    });
    const deltas = second.filter((e) => e.event === "response.output_text.delta").map((e) => e.data.delta).join("");
    expect(deltas).toContain(DEFAULT_TEXT.openai);
    expect(deltas).toContain("tool-ran");
    expect(doneItem(second).content[0].text).toBe(deltas);
    expect(second.at(-1)!.data.response.status).toBe("completed");
    expect(fake.toolOutputs.slice(before)).toEqual(["tool-ran\n"]);
    expect(fake.requests.at(-1)!.headers.authorization).toBe("Bearer k2");
  });

  test("uses Codex 0.171's code-mode `exec` tool offered in an additional_tools item", async () => {
    const offered = {
      type: "additional_tools",
      role: "developer",
      tools: [{ type: "namespace", name: "functions", tools: [{ type: "custom", name: "exec" }] }],
    };
    const call = doneItem(await stream({ input: [offered, user] }));
    expect(call).toMatchObject({ type: "custom_tool_call", name: "exec" });
    expect(call.input).toContain("tools.exec_command(");
    const output = { type: "custom_tool_call_output", call_id: call.call_id, output: [{ type: "input_text", text: "tool-ran\n" }] };
    const answer = doneItem(await stream({ input: [offered, user, call, output] }));
    expect(answer.content[0].text).toContain("tool-ran");
  });

  test("answers plain text without tools, and JSON when stream is false", async () => {
    const plain = await stream({ input: [user] });
    expect(doneItem(plain)).toMatchObject({ type: "message", role: "assistant" });
    const res = await body(post("/v1/responses", { model: "m", input: "hi" }));
    expect(res).toMatchObject({ object: "response", status: "completed" });
    expect(res.output[0].content[0].text).toBe(DEFAULT_TEXT.openai);
  });
});

describe("Gemini API", () => {
  const contents = [{ role: "user", parts: [{ text: "hi" }] }];

  test("streams SSE for :streamGenerateContent?alt=sse", async () => {
    const res = await post("/v1beta/models/gemini-x:streamGenerateContent?alt=sse", { contents }, { "x-goog-api-key": "k3" });
    expect(res.headers.get("content-type")).toStartWith("text/event-stream");
    const events = parseSse(await res.text());
    const text = events.map((e) => e.data.candidates[0].content.parts[0].text).join("");
    expect(text).toBe(DEFAULT_TEXT.gemini);
    expect(events.at(-1)!.data.candidates[0].finishReason).toBe("STOP");
    expect(events.at(-1)!.data.usageMetadata.totalTokenCount).toBeGreaterThan(0);
    expect(fake.requests.at(-1)).toMatchObject({ provider: "gemini", path: "/v1beta/models/gemini-x:streamGenerateContent?alt=sse" });
    expect(fake.requests.at(-1)!.headers["x-goog-api-key"]).toBe("k3");
  });

  test("answers :generateContent, a value of the schema for JSON requests, and :countTokens", async () => {
    const plain = await body(post("/v1beta/models/gemini-x:generateContent", { contents }));
    expect(plain.candidates[0].content.parts[0].text).toBe(DEFAULT_TEXT.gemini);
    const schema = {
      type: "OBJECT",
      properties: { reasoning: { type: "STRING" }, model_choice: { type: "STRING", enum: ["flash", "pro"] }, score: { type: "INTEGER" } },
    };
    const routed = await body(
      post("/v1beta/models/gemini-x:generateContent", {
        contents,
        generationConfig: { responseMimeType: "application/json", responseJsonSchema: schema },
      }),
    );
    expect(JSON.parse(routed.candidates[0].content.parts[0].text)).toEqual({ reasoning: "fake", model_choice: "flash", score: 1 });
    const count = await body(post("/v1beta/models/gemini-x:countTokens", { contents }));
    expect(count.totalTokens).toBeGreaterThan(0);
  });
});

test("refuses and records proxy CONNECTs", async () => {
  const reply = await new Promise<string>((resolve, reject) => {
    const sock = connect(fake.port, "127.0.0.1");
    let got = "";
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error("no reply"));
    }, 10_000);
    sock.on("connect", () => sock.write("CONNECT api.example.invalid:443 HTTP/1.1\r\nHost: api.example.invalid:443\r\n\r\n"));
    sock.on("data", (d) => {
      got += d;
      if (got.includes("\r\n\r\n")) {
        clearTimeout(timer);
        sock.destroy();
        resolve(got);
      }
    });
    sock.on("error", reject);
  });
  expect(reply).toStartWith("HTTP/1.1 403");
  expect(fake.requests.at(-1)).toMatchObject({ provider: "proxy", method: "CONNECT", path: "api.example.invalid:443" });
});

describe("over HTTPS (the stand-in for api.anthropic.com behind sandbox's proxy)", () => {
  test("serves the same API with a certificate a test CA signed for the provider's name", async () => {
    const { makeSignedServer } = await import("../egress/upstream-tls.ts");
    const { request } = await import("node:https");
    const tls = makeSignedServer(["api.anthropic.com"], "fake providers test CA");
    const secure = await startFakeProviders({ host: "127.0.0.1", tls: { key: tls.key, cert: tls.cert } });
    try {
      expect(secure.url).toBe(`https://127.0.0.1:${secure.port}`);
      const answer = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = request(
          { host: "127.0.0.1", port: secure.port, servername: "api.anthropic.com", ca: tls.caPem, method: "POST", path: "/v1/messages", headers: { "content-type": "application/json", "x-api-key": "k", host: "api.anthropic.com" } },
          (res) => {
            let text = "";
            res.on("data", (d) => (text += d));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
          },
        );
        req.on("error", reject);
        req.end(JSON.stringify({ model: "claude-sonnet-4-5", max_tokens: 10, messages: [{ role: "user", content: "hi" }] }));
      });
      expect(answer.status).toBe(200);
      expect(answer.text).toContain(DEFAULT_TEXT.anthropic);
      expect(secure.requests.at(-1)?.headers["x-api-key"]).toBe("k");
    } finally {
      await secure.close();
    }
  });
});

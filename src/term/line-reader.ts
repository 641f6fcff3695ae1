import type { TerminalIn } from "./io.ts";

/**
 * Answers typed on a terminal, one line per question. A terminal may hand
 * over several lines in one read (typed ahead, or pasted): what comes after
 * the first line waits for the next question instead of being lost. The
 * stream is read only while a question waits, and paused between and after,
 * so it keeps nothing alive and leaves the input to whoever reads next.
 */
export class LineReader {
  private buffered = "";
  private ended = false;
  private waiting: ((line: string | undefined) => void) | undefined;
  private readonly decoder = new TextDecoder();
  private listening = false;

  constructor(private readonly input: TerminalIn) {}

  /** The next line without its line end; undefined at end of input (callers treat it as the safe answer). */
  next(): Promise<string | undefined> {
    const line = this.take();
    if (line !== undefined || this.ended) return Promise.resolve(line);
    return new Promise((resolve) => {
      this.waiting = resolve;
      this.listen();
    });
  }

  /** Stop reading: listeners off, the stream paused. */
  close(): void {
    if (!this.listening) return;
    this.input.off("data", this.onData);
    this.input.off("end", this.onEnd);
    this.input.off("error", this.onEnd);
    this.listening = false;
    this.input.pause();
  }

  private take(): string | undefined {
    const nl = this.buffered.indexOf("\n");
    if (nl < 0) return undefined;
    const line = this.buffered.slice(0, nl).replace(/\r$/, "");
    this.buffered = this.buffered.slice(nl + 1);
    return line;
  }

  private listen(): void {
    if (!this.listening) {
      this.input.on("data", this.onData);
      this.input.on("end", this.onEnd);
      this.input.on("error", this.onEnd);
      this.listening = true;
    }
    this.input.resume();
  }

  private answer(line: string | undefined): void {
    const resolve = this.waiting;
    if (!resolve) return;
    this.waiting = undefined;
    // Paused until the next question: nothing is read that no one asked for.
    this.input.pause();
    resolve(line);
  }

  private readonly onData = (chunk: Buffer | string): void => {
    this.buffered += typeof chunk === "string" ? chunk : this.decoder.decode(chunk, { stream: true });
    const line = this.take();
    if (line !== undefined) this.answer(line);
  };

  private readonly onEnd = (): void => {
    this.ended = true;
    this.answer(undefined);
  };
}

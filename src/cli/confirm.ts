import type { TerminalIn, TerminalOut } from "../term/io.ts";

/** `y` or `yes`, any case; everything else (an empty line included) is no. */
export function isYes(answer: string): boolean {
  return /^\s*y(es)?\s*$/i.test(answer);
}

/**
 * Ask a yes/no question and read one line from `input`. End of input counts
 * as no, so a closed stdin can never approve anything. The stream is paused
 * again afterwards so it does not keep the process alive.
 */
export function confirm(input: TerminalIn, output: TerminalOut, question: string): Promise<boolean> {
  output.write(`${question} [y/N] `);
  return new Promise((resolve) => {
    const decoder = new TextDecoder();
    let line = "";
    const finish = (answer: boolean) => {
      input.off("data", onData);
      input.off("end", onEnd);
      input.off("error", onEnd);
      input.pause();
      resolve(answer);
    };
    const onData = (chunk: Buffer | string) => {
      line += typeof chunk === "string" ? chunk : decoder.decode(chunk, { stream: true });
      const nl = line.indexOf("\n");
      if (nl >= 0) finish(isYes(line.slice(0, nl)));
    };
    const onEnd = () => {
      output.write("\n");
      finish(false);
    };
    input.on("data", onData);
    input.on("end", onEnd);
    input.on("error", onEnd);
    input.resume();
  });
}

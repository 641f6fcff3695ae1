import type { SignalSource, TerminalOut } from "./io.ts";

export interface TerminalSize {
  rows: number;
  columns: number;
}

export function terminalSize(out: TerminalOut): TerminalSize | undefined {
  const rows = out.rows;
  const columns = out.columns;
  return rows && columns ? { rows, columns } : undefined;
}

/**
 * Send the size now and on every SIGWINCH (and the stream's own `resize`
 * event, which is how Node and Bun surface it). Returns the unsubscribe.
 */
export function followResize(out: TerminalOut, signals: SignalSource, send: (size: TerminalSize) => void): () => void {
  let last = "";
  const push = () => {
    const size = terminalSize(out);
    if (!size) return;
    const key = `${size.rows}x${size.columns}`;
    if (key === last) return;
    last = key;
    send(size);
  };
  push();
  const offSignal = signals.on("SIGWINCH", push);
  out.on("resize", push);
  return () => {
    offSignal();
    out.off("resize", push);
  };
}

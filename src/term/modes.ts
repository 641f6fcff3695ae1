import type { TerminalOut } from "./io.ts";

/**
 * Terminal modes a full-screen program switches on and, when it is killed
 * (timeout, Ctrl-C twice, OOM), never switches off: the alternate screen, a
 * hidden cursor, mouse reporting (every encoding), bracketed paste. After a
 * TTY run sandbox switches them all off; each is a no-op when it was not on,
 * and a shell that uses bracketed paste turns it on again at its next prompt.
 */
export const MODES_OFF = [
  "\u001b[?1049l", // alternate screen off (the saved cursor restored)
  "\u001b[?25h", // cursor shown
  "\u001b[?1000l\u001b[?1002l\u001b[?1003l\u001b[?1005l\u001b[?1006l\u001b[?1015l", // mouse reporting off
  "\u001b[?2004l", // bracketed paste off
].join("");

export function resetTerminalModes(out: TerminalOut): void {
  if (out.isTTY === true) out.write(MODES_OFF);
}

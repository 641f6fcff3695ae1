/**
 * Text that came from something sandbox does not trust (a file name in the
 * workspace, a path the container wrote, a host name or SNI a request sent
 * to the egress proxy), made safe to print on the user's terminal.
 *
 * A terminal acts on control characters: ESC starts sequences that move the
 * cursor, rewrite earlier lines, set the window title, or (on some
 * terminals) answer back into the input; a carriage return or newline lets a
 * name forge a line of sandbox's own. So every control character is shown as
 * an escape instead of being sent raw:
 *
 *  - C0 (U+0000-U+001F) and DEL: `\n`, `\r`, `\t` by name, the rest as `\xHH`
 *    (ESC is `\x1b`);
 *  - C1 (U+0080-U+009F): `\xHH` too (U+009B is a one-character CSI for
 *    terminals that read 8-bit controls, and text decoded as latin1 carries
 *    raw bytes in that range);
 *  - characters that reorder or split what is shown (bidirectional
 *    overrides and isolates, line and paragraph separators): `\uHHHH`.
 *
 * Everything else, other languages' letters included, is left as it is.
 */

// C0, DEL, C1; ALM; LRM, RLM; LS, PS; LRE..RLO; LRI..PDI.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
// The same without newline and tab: for text whose lines sandbox itself laid out.
const UNSAFE_KEEPING_LINES = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const NAMED: Readonly<Record<string, string>> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

function escape(c: string): string {
  const named = NAMED[c];
  if (named) return named;
  const code = c.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
}

/** One field on one line: every control character escaped, newlines included. */
export function printable(text: string): string {
  return text.replace(UNSAFE, escape);
}

/**
 * A whole message sandbox composed, as a last line of defence where it is
 * written: newlines and tabs of its own layout stay, every other control
 * character is escaped. Fields from untrusted input are escaped with
 * `printable` where they are put in, so a newline in them cannot forge a line.
 */
export function printableLines(text: string): string {
  return text.replace(UNSAFE_KEEPING_LINES, escape);
}

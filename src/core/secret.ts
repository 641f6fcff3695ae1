/**
 * A credential's value on its way from the host (env, file, command) to the
 * request header the proxy writes. Only `reveal()` gives the text; every
 * way a value usually ends up on a screen or in a file by accident (string
 * interpolation, JSON.stringify, console.log / util.inspect, error messages
 * built from it) shows `[redacted]` instead. The text sits in a private
 * field, which object printers do not walk.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  /** The value itself: call only where it goes into a request to the credential's own host. */
  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return "[redacted]";
  }

  toJSON(): string {
    return "[redacted]";
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return "[redacted]";
  }
}

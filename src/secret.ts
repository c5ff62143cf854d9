import { inspect } from 'node:util';

/**
 * A secret value (API token secret, webhook secret, bearer token). Every way of turning it
 * into text — String(), template literals, JSON.stringify, util.inspect, pino — yields
 * `[redacted]`; only `reveal()` returns the value, so a leak needs a deliberate call.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return '[redacted]';
  }

  toJSON(): string {
    return '[redacted]';
  }

  [inspect.custom](): string {
    return 'Secret([redacted])';
  }
}

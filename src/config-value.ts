/**
 * A configuration value as an error message may quote it back: short, on one line, and never a
 * secret. Settings whose names say they hold one (a token, a secret, a password) are not quoted at
 * all, and the user part of a URL (`redis://user:password@host`) is masked, since a misplaced
 * secret is exactly the mistake such a message reports.
 */

/** Names of settings that hold, or may be mistaken for, a secret; a *_FILE path names a file, not its content. */
const SECRET_NAME = /secret|token|password/i;
const PATH_NAME = /file$/i;

/** Long enough to recognise what was typed, short enough to keep the message on one line. */
const MAX_SHOWN = 60;

/** Whether a setting, by its variable or key name, may hold a secret. */
export function holdsSecret(name: string): boolean {
  const last = name.split(/[.\s]/).pop() ?? name;
  return SECRET_NAME.test(last) && !PATH_NAME.test(last);
}

/** `user:password@` (with or without a scheme before it) replaced by `***@`. */
const maskUserinfo = (text: string): string => text.replace(/^([a-z][a-z0-9+.-]*:\/\/)?[^/@\s]*@/i, '$1***@');

/**
 * The value as JSON-quoted text (control characters escaped), truncated; numbers and lists as
 * YAML gave them. Undefined for a setting that may hold a secret.
 */
export function quoteValue(name: string, value: unknown): string | undefined {
  if (holdsSecret(name) || value === undefined) return undefined;
  if (typeof value !== 'string') {
    const json = JSON.stringify(value) ?? String(value);
    return json.length > MAX_SHOWN ? `${json.slice(0, MAX_SHOWN)}…` : json;
  }
  const chars = [...maskUserinfo(value)];
  if (chars.length <= MAX_SHOWN) return JSON.stringify(chars.join(''));
  return `${JSON.stringify(chars.slice(0, MAX_SHOWN).join('')).slice(0, -1)}…"`;
}

/**
 * "`"1.5"` is not valid: expected …" for a message that starts with "expected", so that every such
 * message quotes what was given; a secret's message, or one that already quotes it, is unchanged.
 */
export function withValue(name: string, value: unknown, message: string): string {
  const quoted = message.startsWith('expected ') ? quoteValue(name, value) : undefined;
  return quoted ? `${quoted} is not valid: ${message}` : message;
}

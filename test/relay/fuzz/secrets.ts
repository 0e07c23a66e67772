// Every token and Authorization value the fuzzer sends is remembered here, so the relay's logs can be
// checked for any of them (logs must never carry a token or a header).
const MIN_DISTINCT = 16; // shorter values (e.g. "Motebit") may appear in logs for other reasons

export class SecretWatch {
  readonly #secrets = new Set<string>();

  /** A token: the whole of it, and its signature part alone (a log may cut the claims). */
  token(token: string): string {
    this.#add(token);
    const dot = token.lastIndexOf('.');
    if (dot >= 0) this.#add(token.slice(dot + 1));
    return token;
  }

  /** An Authorization header value as sent (and its credentials after the scheme). */
  header(value: string): string {
    this.#add(value);
    const space = value.indexOf(' ');
    if (space >= 0) this.#add(value.slice(space + 1).trim());
    return value;
  }

  /** The secrets found in `text` (empty when none leaked). */
  leaked(text: string): string[] {
    return [...this.#secrets].filter((secret) => text.includes(secret));
  }

  #add(secret: string): void {
    if (secret.length >= MIN_DISTINCT) this.#secrets.add(secret);
  }
}

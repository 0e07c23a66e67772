// The one place the relay reads a request target. Only origin-form targets ("/path?query", RFC 9112
// §3.2.1) name a resource here; absolute-form ("http://host/…", meant for proxies), authority-form and
// asterisk-form, or anything WHATWG URL cannot parse, are refused with 400 — never thrown at an event
// emitter, where one bad request line once ended the whole process.
export interface RequestTarget {
  readonly pathname: string;
  readonly searchParams: URLSearchParams;
}

const BASE = 'http://relay.invalid';

/** The parsed target, or null when it is not a usable origin-form target. */
export function parseRequestTarget(raw: string | undefined): RequestTarget | null {
  if (raw === undefined || !raw.startsWith('/') || raw.startsWith('//')) return null;
  let url: URL;
  try {
    url = new URL(raw, BASE);
  } catch {
    return null;
  }
  if (url.origin !== BASE) return null;
  return { pathname: url.pathname, searchParams: url.searchParams };
}

/** The path to write in a log line: the parsed pathname, or a marker (never the raw, untrusted target). */
export function loggablePath(raw: string | undefined): string {
  return parseRequestTarget(raw)?.pathname ?? '(invalid request target)';
}

// Which relay a token is meant for (its `aud` claim): the relay's origin, with the loopback names of this
// machine counted as one. http://localhost:8787, http://127.0.0.1:8787 and http://[::1]:8787 are the same
// relay to a person, and all name this machine; a relay that knows itself as one of them must not refuse a
// device that typed another (wrong_audience). Scheme and port still count, and no other host is ever
// folded: a token for one machine's relay is never good at another's. Used by the relay's audience check
// (relay/auth.ts) and by the devices that mint tokens (main/sync), so both sides agree.
const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]']);
const LOOPBACK = '127.0.0.1';

/** The canonical form of a relay URL as an audience: its origin, any loopback name as 127.0.0.1. */
export function canonicalAudience(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return url;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return url;
  if (LOOPBACK_NAMES.has(parsed.hostname.toLowerCase())) parsed.hostname = LOOPBACK;
  return parsed.origin;
}

/** Whether a token's audience names this relay. */
export function sameAudience(claimed: string, relay: string): boolean {
  return claimed === relay || canonicalAudience(claimed) === canonicalAudience(relay);
}

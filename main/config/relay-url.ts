// A relay URL is an origin: http or https, a host and maybe a port; no path, query, fragment or
// credentials (a token in a URL ends up in logs). "https://relay.example.com/" is accepted and normalised
// to "https://relay.example.com".
export class RelayUrlError extends Error {
  override readonly name = 'RelayUrlError';
}

export function parseRelayUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    throw new RelayUrlError(`"${text}" is not a URL; a relay URL looks like https://relay.example.com`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new RelayUrlError(`a relay URL is http:// or https://, not ${url.protocol}//`);
  }
  if (url.username !== '' || url.password !== '') throw new RelayUrlError('a relay URL carries no user name or password');
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '') {
    throw new RelayUrlError(`a relay URL has no path, query or fragment: use ${url.origin}`);
  }
  return url.origin;
}

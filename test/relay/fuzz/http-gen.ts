// Raw HTTP/1.x requests: odd request lines, headers and body framings, plus well-formed requests that
// carry a VALID token for their exact method, target and body (so the body reaches JSON parsing and
// schema validation). Generated as plain data (readable, shrinkable), rendered to bytes at send time.
import fc from 'fast-check';
import { bytesOf } from './bytes.ts';
import { anyNode, enrolBody, mangle, mangleArb, pushBody, renderJson, type JNode, type JsonContext, type Mangle } from './json-gen.ts';

export interface HttpContext extends JsonContext {
  motebitId: string;
  /** A device that fuzz cases may revoke. */
  victimDeviceId: string;
  /** A well-formed motebit id nobody enrolled. */
  strangerMotebitId: string;
  /** Tokens for exactly this request (the fixture remembers them as secrets). */
  deviceToken(method: string, path: string, body: Buffer): string;
  identityToken(method: string, path: string, body: Buffer): string;
  /** Remembers an Authorization value as a secret and returns it. */
  secretHeader(value: string): string;
}

export type Auth =
  | { a: 'none' }
  | { a: 'device' | 'identity' }
  /** A real token, sent wrongly: other body, lower-case scheme, extra spaces, another scheme. */
  | { a: 'bent'; how: 'other-body' | 'lower-scheme' | 'double-space' | 'bearer' | 'no-scheme' | 'twice' }
  | { a: 'random'; prefix: string; junk: string; marker: string };

export type Body = { b: 'none' } | { b: 'json'; node: JNode; mangle: Mangle } | { b: 'bytes'; bytes: number[] } | { b: 'fill'; size: number; byte: number };

export type Framing =
  | { f: 'length' }
  | { f: 'none' }
  | { f: 'cl'; values: string[] }
  | { f: 'chunked'; te: string[]; sizes: number[]; bad: BadChunk; alsoLength: boolean };

export type BadChunk = 'none' | 'hex-garbage' | 'huge-size' | 'negative' | 'no-crlf' | 'no-last-chunk' | 'size-too-big' | 'extension' | 'trailer' | 'bare-lf' | 'space-in-size';

export interface HttpCase {
  method: string;
  target: string;
  version: string;
  eol: string;
  host: string | null;
  headers: Array<[string, string] | string>;
  contentType: string | null;
  auth: Auth;
  body: Body;
  framing: Framing;
  /** Where to cut the bytes into separate writes (fractions of the length). */
  splits: number[];
  halfClose: boolean;
  /** A second request pipelined after this one on the same connection: GET /healthz, or a WebSocket upgrade. */
  pipeline: 'none' | 'healthz' | 'upgrade';
}

// ---- pieces ----

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH', 'CONNECT', 'TRACE', 'PRI', 'get', 'GeT', 'MKCOL', 'PROPFIND', 'SEARCH', 'QUERY', 'BREW', 'SOURCE', '', 'G ET', 'GET\0', 'GÉT', 'X'.repeat(200)];
const TARGETS = [
  '/', '/healthz', '/healthz?x=1', '/metrics', '/v1', '/v1/motebits', '/v1/motebits/{mb}', '/v1/motebits/{mb}/', '/v1/motebits/{mb}/events', '/v1/motebits/{mb}/events?after=0',
  '/v1/motebits/{mb}/events?after=-1&limit=1e9', '/v1/motebits/{mb}/events?after=1&after=2', '/v1/motebits/{mb}/devices', '/v1/motebits/{mb}/devices?x', '/v1/motebits/{mb}/devices/{dv}/revoke',
  '/v1/motebits/{mb}/ws', '/v1/motebits/{mb}/frontier', '/v1/motebits/{mb}/frontier?at=1', '/v1/motebits/{mb}/frontier?at=0&at=1', '/v1/motebits/{stranger}/events', '/v1/motebits/mb_/events', '/v1/motebits/{mb}/devices/dv_x/revoke',
  'http://[', 'http://[ ', 'http://[::1', 'http://[::1]x/', 'http://', 'http:', 'http://x/healthz', 'http://127.0.0.1/v1/motebits/{mb}/events', 'https://[::1]:99999/', 'HTTP://[', 'ws://[', 'http://%/', 'http://a:b@[/',
  'file:///etc/passwd', 'javascript:alert(1)', 'mailto:x', 'x:y', 'example.com:443', '127.0.0.1:80', '[::1]:80', '[', ']', '*', '**', '*/healthz',
  '//', '//x', '//x/healthz', '///healthz', '//[', '/\\x', '\\\\x', '\\healthz', '/%', '/%zz', '/%00', '/%2e%2e/%2e%2e/', '/v1/motebits/%6Db_x/events', '/%ff%fe', '/%C0%AF',
  '/healthz%00', '/healthz#frag', '/healthz?#', '/..', '/./healthz', '/healthz/', '/HEALTHZ', '/healthz;x', '/%2fhealthz', '/é', '/💥', '/\u0085', '/\u2028', '/\u00ff\u00fe', '', '?', '#', '/?a=%', '/?%%%',
];
const VERSIONS = ['HTTP/1.1', 'HTTP/1.0', 'HTTP/0.9', 'HTTP/2.0', 'HTTP/1.2', 'HTTP/9.9', 'http/1.1', 'HTTP/1.1 ', 'HTTP/1', '', 'HTTP/1.1\0', 'HTTP/01.1'];
const HOSTS = ['', '[', 'http://[', 'evil.example', '127.0.0.1:1', 'x'.repeat(10_000), 'a b', '\u00ff'];
const CONTENT_TYPES = ['application/json', 'application/json; charset=utf-8', 'APPLICATION/JSON', 'application/json;charset=UTF-8', 'application/json; charset=latin1', 'text/plain', '', 'application/jsonx', 'application/json\0'];
const CONTENT_LENGTHS = ['-1', '+5', ' 5', '5 ', '5, 5', '5,6', 'abc', '99999999999999999999', '0x10', '1e3', '', '0', '007', '4194305', '1.0'];
const TE_VALUES = ['chunked', 'CHUNKED', 'gzip, chunked', 'chunked, gzip', 'identity', ' chunked', 'chunked\t', 'chunked, chunked', 'xchunked', 'chunk'];
const RAW_HEADER_LINES = ['no colon here', ' leading: space', '\tfolded continuation', 'Name : x', 'Na\0me: x', 'X: a\0b', 'X: a\rb', ': empty name', 'X-Ü: v', 'X: \u00ff\u00fe', 'X-Long: ' + 'v'.repeat(20_000), 'Connection: upgrade', 'Upgrade: websocket', 'Upgrade: h2c', 'Expect: 100-continue', 'Expect: nonsense', 'Connection: close', 'Connection: keep-alive, close', 'Content-Encoding: gzip', 'Authorization: Basic Zm9vOmJhcg=='];

const pick = <T>(items: readonly T[]): fc.Arbitrary<T> => fc.constantFrom(...items);
const weighted = <T>(common: fc.Arbitrary<T>, rare: fc.Arbitrary<T>, commonWeight = 8): fc.Arbitrary<T> => fc.oneof({ arbitrary: common, weight: commonWeight }, { arbitrary: rare, weight: 1 });
const printable = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 30 });
const controlsToo = fc.string({ unit: 'binary-ascii', maxLength: 30 });

/** Inserts `insert` into `text` at a fraction of its length. */
const insertInto = fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.oneof(controlsToo, fc.string({ unit: 'binary', maxLength: 6 }), fc.constantFrom('%', '%0', '..', '//', '\0', '\r', '\n', ' ', '\t', '#', '?', '@', '[', ']', '\\')));

/** Any request target: known paths, absolute-, authority- and asterisk-form, odd encodings, huge, raw bytes. */
export const rawTarget: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: pick(TARGETS), weight: 14 },
  { arbitrary: fc.tuple(pick(TARGETS), insertInto).map(([t, [at, s]]) => t.slice(0, Math.floor(at * t.length)) + s + t.slice(Math.floor(at * t.length))), weight: 3 },
  { arbitrary: fc.tuple(pick(['/', '/healthz?q=', '/v1/motebits/{mb}/events?after=']), fc.constantFrom(1000, 8000, 16_000, 70_000)).map(([p, n]) => p + 'a'.repeat(n)), weight: 1 },
  { arbitrary: fc.string({ unit: 'binary', maxLength: 40 }).map((s) => `/${s}`), weight: 1 },
  { arbitrary: fc.string({ unit: 'binary', maxLength: 40 }), weight: 1 },
);

const SANE_TARGETS = ['/healthz', '/metrics', '/', '/v1/motebits/{mb}/frontier', '/v1/motebits/{mb}/events', '/v1/motebits/{mb}/events?after=0&limit=5', '/v1/motebits/{mb}/devices', '/v1/motebits/{mb}/devices/{dv}/revoke', '/v1/motebits/{mb}/ws', '/v1/motebits/{stranger}/events', '/v1/motebits/{stranger}/devices'];

const saneHeaders = fc.array(fc.tuple(fc.stringMatching(/^X-[A-Za-z0-9-]{1,12}$/), printable.map((v) => v.trim())), { maxLength: 3 });
const oddHeaders: fc.Arbitrary<Array<[string, string] | string>> = fc.array(
  fc.oneof(
    { arbitrary: pick(RAW_HEADER_LINES), weight: 2 },
    { arbitrary: fc.tuple(fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,20}$/), fc.string({ unit: 'binary-ascii', maxLength: 40 })), weight: 3 },
    { arbitrary: fc.tuple(fc.stringMatching(/^[A-Za-z0-9-]{1,20}$/), fc.string({ unit: 'binary', maxLength: 40 })), weight: 1 },
    { arbitrary: fc.constantFrom(100, 500, 2000).map((n) => Array.from({ length: n }, (_, i) => `X-${i}: ${i}`).join('\r\n')), weight: 1 },
  ),
  { minLength: 1, maxLength: 4 },
);

const saneAuth: fc.Arbitrary<Auth> = fc.oneof({ arbitrary: fc.constant<Auth>({ a: 'none' }), weight: 2 }, { arbitrary: pick(['device', 'identity'] as const).map((a): Auth => ({ a })), weight: 3 });
const oddAuth: fc.Arbitrary<Auth> = fc.oneof(
  pick(['other-body', 'lower-scheme', 'double-space', 'bearer', 'no-scheme', 'twice'] as const).map((how): Auth => ({ a: 'bent', how })),
  fc.record({
    a: fc.constant('random' as const),
    prefix: pick(['Motebit ', 'Motebit', 'motebit ', 'Bearer ', 'Basic ', '', 'Motebit \0', 'Motebit \u00ff']),
    junk: fc.oneof(controlsToo, fc.constantFrom('x'.repeat(3000), '.', '..', 'a.b', '\t')),
    marker: fc.stringMatching(/^[A-Za-z0-9_-]{20}$/),
  }),
);

const saneBody: fc.Arbitrary<Body> = fc.oneof(
  { arbitrary: fc.constant<Body>({ b: 'none' }), weight: 2 },
  { arbitrary: fc.record({ b: fc.constant('json' as const), node: fc.oneof(pushBody, enrolBody, anyNode), mangle: fc.constant<Mangle>({ m: 'none' }) }), weight: 5 },
);
const oddBody: fc.Arbitrary<Body> = fc.oneof(
  fc.record({ b: fc.constant('json' as const), node: fc.oneof(pushBody, enrolBody, anyNode), mangle: mangleArb }),
  fc.record({ b: fc.constant('bytes' as const), bytes: fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 64 }) }),
  fc.record({ b: fc.constant('fill' as const), size: fc.constantFrom(70_000, 4 * 1024 * 1024 + 1, 6_000_000), byte: fc.constantFrom(0x20, 0x5b, 0x7b, 0x00) }),
);

const chunkedArb = (bad: fc.Arbitrary<BadChunk>, te: fc.Arbitrary<string>, alsoLength: fc.Arbitrary<boolean>): fc.Arbitrary<Framing> =>
  fc.record({ f: fc.constant('chunked' as const), te: fc.array(te, { minLength: 1, maxLength: 2 }), sizes: fc.array(fc.integer({ min: 1, max: 5000 }), { maxLength: 4 }), bad, alsoLength });
const saneFraming: fc.Arbitrary<Framing> = weighted(fc.constant<Framing>({ f: 'length' }), chunkedArb(fc.constant('none'), fc.constant('chunked'), fc.constant(false)), 4);
const oddFraming: fc.Arbitrary<Framing> = fc.oneof(
  fc.constant<Framing>({ f: 'none' }),
  fc.array(fc.oneof(pick(CONTENT_LENGTHS), fc.integer({ min: -10, max: 10 }).map((d) => `Δ${d}`)), { minLength: 1, maxLength: 2 }).map((values): Framing => ({ f: 'cl', values })),
  chunkedArb(pick<BadChunk>(['none', 'hex-garbage', 'huge-size', 'negative', 'no-crlf', 'no-last-chunk', 'size-too-big', 'extension', 'trailer', 'bare-lf', 'space-in-size']), weighted(fc.constant('chunked'), pick(TE_VALUES), 1), fc.boolean()),
);

const splitsArb = weighted(fc.constant<number[]>([]), fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 4 }), 4);

type Part = 'method' | 'target' | 'version' | 'eol' | 'host' | 'headers' | 'contentType' | 'auth' | 'body' | 'framing';
const PARTS: Part[] = ['method', 'version', 'eol', 'host', 'headers', 'contentType', 'auth', 'body', 'framing'];

const saneParts = fc.record({
  method: pick(['GET', 'POST']),
  target: pick(SANE_TARGETS),
  version: fc.constant('HTTP/1.1'),
  eol: fc.constant('\r\n'),
  host: fc.constant<string | null>('127.0.0.1'),
  headers: saneHeaders as fc.Arbitrary<Array<[string, string] | string>>,
  contentType: pick<string | null>(['application/json', 'application/json; charset=utf-8']),
  auth: saneAuth,
  body: saneBody,
  framing: saneFraming,
});
const oddParts = fc.record({
  method: pick(METHODS),
  target: rawTarget,
  version: pick(VERSIONS),
  eol: pick(['\n', '\r', '\n\r', '\r\r\n']),
  host: fc.oneof(fc.constant(null), pick(HOSTS)),
  headers: oddHeaders,
  contentType: fc.oneof(fc.constant(null), pick(CONTENT_TYPES)),
  auth: oddAuth,
  body: oddBody,
  framing: oddFraming,
});

/**
 * Any request: sane but for an odd target (often: the target is what once killed the relay) and up to
 * two other odd parts, so most requests get past the HTTP parser and many reach the router.
 */
export const rawHttpCase: fc.Arbitrary<HttpCase> = fc
  .record({
    sane: saneParts,
    odd: oddParts,
    oddParts: fc.tuple(fc.subarray(PARTS, { maxLength: 2 }), fc.boolean()).map(([parts, target]): Part[] => (target ? ['target', ...parts] : parts)),
    splits: splitsArb,
    halfClose: weighted(fc.constant(true), fc.constant(false), 3),
    pipeline: weighted(fc.constant('none' as const), fc.constantFrom('healthz' as const, 'upgrade' as const), 5),
  })
  .map(({ sane, odd, oddParts: which, ...rest }): HttpCase => {
    const parts = { ...sane };
    for (const part of which) Object.assign(parts, { [part]: odd[part] });
    return { ...parts, ...rest };
  });

const SIGNED_TARGETS = [
  ['POST', '/v1/motebits/{mb}/events'],
  ['POST', '/v1/motebits/{mb}/devices'],
  ['GET', '/v1/motebits/{mb}/events'],
  ['GET', '/v1/motebits/{mb}/devices'],
  ['GET', '/v1/motebits/{mb}/frontier'],
  ['POST', '/v1/motebits/{mb}/devices/{dv}/revoke'],
] as const;
const QUERIES = ['', '?at=1', '?at=0', '?at=9007199254740992', '?at=1&at=2', '?after=0', '?after=-1', '?after=1e3', '?after=99999999999999999999', '?after=9007199254740991', '?after=&after=', '?limit=0', '?limit=1001', '?after=0&limit=1000', '?after=0x1', '?after=%30', '?__proto__=1', '?after=1&x=2', '?&&&', '?after', '?after=\u00ff'];

/** A well-formed request whose token is valid for exactly its method, target and body: the body is what is fuzzed. */
export const signedHttpCase: fc.Arbitrary<HttpCase> = fc
  .record({
    route: fc.nat(SIGNED_TARGETS.length - 1),
    query: weighted(fc.constant(''), fc.oneof(pick(QUERIES), printable.map((s) => `?${s}`)), 1),
    node: fc.oneof(pushBody, enrolBody, anyNode),
    mangle: mangleArb,
    chunked: weighted(fc.constant(false), fc.constant(true), 6),
    splits: splitsArb,
  })
  .map(({ route, query, node, mangle: how, chunked, splits }): HttpCase => {
    const [method, path] = SIGNED_TARGETS[route]!;
    const post = method === 'POST';
    const body: JNode = path.endsWith('/events') ? node : path.endsWith('/devices') ? node : { t: 'obj', entries: [] };
    return {
      method,
      target: path + query,
      version: 'HTTP/1.1',
      eol: '\r\n',
      host: '127.0.0.1',
      headers: [],
      contentType: post ? 'application/json' : null,
      auth: { a: path.endsWith('/revoke') || (post && path.endsWith('/devices')) ? 'identity' : 'device' },
      body: post ? { b: 'json', node: body, mangle: how } : { b: 'none' },
      framing: chunked && post ? { f: 'chunked', te: ['chunked'], sizes: [7, 300], bad: 'none', alsoLength: false } : { f: 'length' },
      splits,
      halfClose: false,
      pipeline: 'none',
    };
  });

// ---- rendering ----

export function fillTarget(target: string, ctx: HttpContext): string {
  return target.replaceAll('{mb}', ctx.motebitId).replaceAll('{dv}', ctx.victimDeviceId).replaceAll('{stranger}', ctx.strangerMotebitId);
}

function renderBody(body: Body, ctx: HttpContext): Buffer {
  switch (body.b) {
    case 'none':
      return Buffer.alloc(0);
    case 'json':
      return mangle(renderJson(body.node, ctx), body.mangle);
    case 'bytes':
      return Buffer.from(body.bytes);
    case 'fill':
      return Buffer.alloc(body.size, body.byte);
  }
}

function chunked(body: Buffer, framing: Extract<Framing, { f: 'chunked' }>, eol: string): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  const sizes = [...framing.sizes];
  while (at < body.length) {
    const size = Math.min(sizes.shift() ?? body.length, body.length - at);
    const data = body.subarray(at, at + size);
    at += size;
    let head = size.toString(16);
    if (framing.bad === 'hex-garbage') head = 'zz';
    if (framing.bad === 'negative') head = `-${head}`;
    if (framing.bad === 'size-too-big') head = (size + 10).toString(16);
    if (framing.bad === 'extension') head += `;ext=${'e'.repeat(5000)}`;
    if (framing.bad === 'space-in-size') head = ` ${head} `;
    parts.push(Buffer.from(head + eol), data, Buffer.from(framing.bad === 'no-crlf' ? '' : framing.bad === 'bare-lf' ? '\n' : eol));
  }
  if (framing.bad === 'huge-size') parts.push(Buffer.from(`ffffffffffffffffff${eol}x${eol}`));
  if (framing.bad !== 'no-last-chunk') parts.push(Buffer.from(framing.bad === 'trailer' ? `0${eol}Bad Trailer${eol}X: ${'t'.repeat(100)}${eol}${eol}` : `0${eol}${eol}`));
  return Buffer.concat(parts);
}

/** The request as bytes (Authorization values and tokens are registered as secrets on the way). */
export function renderHttp(c: HttpCase, ctx: HttpContext): Buffer {
  const target = fillTarget(c.target, ctx);
  const body = renderBody(c.body, ctx);
  const lines: string[] = [`${c.method} ${target}${c.version ? ` ${c.version}` : ''}`];
  if (c.host !== null) lines.push(`Host: ${c.host}`);
  if (c.contentType !== null) lines.push(`Content-Type: ${c.contentType}`);
  const auth = authorization(c, target, body, ctx);
  for (const value of auth) lines.push(`Authorization: ${value}`);
  for (const header of c.headers) {
    const line = typeof header === 'string' ? header : `${header[0]}: ${header[1]}`;
    const auth = /^authorization:\s*(.*)$/i.exec(line);
    if (auth) ctx.secretHeader(auth[1]!);
    lines.push(line);
  }
  let payload = body;
  switch (c.framing.f) {
    case 'length':
      if (body.length > 0 || c.method === 'POST') lines.push(`Content-Length: ${body.length}`);
      break;
    case 'none':
      break;
    case 'cl':
      for (const value of c.framing.values) lines.push(`Content-Length: ${value.startsWith('Δ') ? Math.max(0, body.length + Number(value.slice(1))) : value}`);
      break;
    case 'chunked':
      for (const te of c.framing.te) lines.push(`Transfer-Encoding: ${te}`);
      if (c.framing.alsoLength) lines.push(`Content-Length: ${body.length}`);
      payload = chunked(body, c.framing, c.eol);
      break;
  }
  const head = bytesOf(lines.join(c.eol) + c.eol + c.eol);
  const tail = Buffer.from(
    c.pipeline === 'healthz'
      ? 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'
      : c.pipeline === 'upgrade'
        ? `GET /v1/motebits/${ctx.motebitId}/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`
        : '',
  );
  return Buffer.concat([head, payload, tail]);
}

function authorization(c: HttpCase, target: string, body: Buffer, ctx: HttpContext): string[] {
  const method = c.method.toUpperCase();
  const real = (forBody = body): string => ctx.deviceToken(method, target, forBody);
  switch (c.auth.a) {
    case 'none':
      return [];
    case 'device':
      return [ctx.secretHeader(`Motebit ${ctx.deviceToken(method, target, body)}`)];
    case 'identity':
      return [ctx.secretHeader(`Motebit ${ctx.identityToken(method, target, body)}`)];
    case 'bent': {
      const token = real(c.auth.how === 'other-body' ? Buffer.concat([body, Buffer.from(' ')]) : body);
      const value = { 'other-body': `Motebit ${token}`, 'lower-scheme': `motebit ${token}`, 'double-space': `Motebit  ${token}`, bearer: `Bearer ${token}`, 'no-scheme': token, twice: `Motebit ${token}` }[c.auth.how];
      return c.auth.how === 'twice' ? [ctx.secretHeader(value), ctx.secretHeader(`Motebit ${real()}`)] : [ctx.secretHeader(value)];
    }
    case 'random':
      return [ctx.secretHeader(`${c.auth.prefix}${c.auth.junk}${c.auth.marker}`)];
  }
}

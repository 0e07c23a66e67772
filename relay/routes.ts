// Every endpoint of the relay, in one table, each with the authentication it requires (issue 15: auth that
// cannot be forgotten). The server dispatches through this table to one handler per route name (a missing
// handler does not compile), and test/relay/routes.test.ts walks it: every route that needs a token refuses
// a request without one, and the routes that need none are exactly the ones listed there, each with why.
import type { z } from 'zod';
import { DeviceIdSchema, MotebitIdSchema, SnapshotIdSchema } from '../shared/portable/ids.ts';
import { ChunkIndexSchema, PairingIdSchema } from '../shared/portable/relay-api.ts';

/**
 * none: anybody (each says why); device: a token of a device of the motebit, not revoked; member: a
 * device's or the recovery key's (docs/keys.md); identity: a token of the motebit's protocol-2 identity
 * key; member-or-genesis: a member's token, except the genesis entry that founds a new motebit, which
 * signs itself.
 */
export type RouteAuth = 'none' | 'device' | 'member' | 'identity' | 'member-or-genesis';

export interface RouteSpec {
  readonly name: string;
  readonly method: 'GET' | 'POST';
  /** Segments; ":motebit", ":device", ":pairing" and ":snapshot" match an id of that kind, ":chunk" a chunk index. */
  readonly path: string;
  readonly auth: RouteAuth;
  /** For auth none (and member-or-genesis): why nobody needs to sign in. */
  readonly why?: string;
}

export const ROUTES = [
  { name: 'health', method: 'GET', path: '/healthz', auth: 'none', why: 'liveness and the protocol revision, for load balancers and for a device checking an address' },
  { name: 'enrol', method: 'POST', path: '/v1/motebits/:motebit/devices', auth: 'identity' },
  { name: 'devices', method: 'GET', path: '/v1/motebits/:motebit/devices', auth: 'device' },
  { name: 'revoke', method: 'POST', path: '/v1/motebits/:motebit/devices/:device/revoke', auth: 'identity' },
  { name: 'push', method: 'POST', path: '/v1/motebits/:motebit/events', auth: 'device' },
  { name: 'pull', method: 'GET', path: '/v1/motebits/:motebit/events', auth: 'device' },
  { name: 'frontier', method: 'GET', path: '/v1/motebits/:motebit/frontier', auth: 'device' },
  { name: 'membership', method: 'GET', path: '/v1/motebits/:motebit/membership', auth: 'member' },
  { name: 'offerMembership', method: 'POST', path: '/v1/motebits/:motebit/membership', auth: 'member-or-genesis', why: "a new motebit's genesis entry is signed by its founding device, which has no token yet" },
  { name: 'ws', method: 'GET', path: '/v1/motebits/:motebit/ws', auth: 'device' },
  { name: 'beginSnapshot', method: 'POST', path: '/v1/motebits/:motebit/snapshots', auth: 'device' },
  { name: 'latestSnapshot', method: 'GET', path: '/v1/motebits/:motebit/snapshots/latest', auth: 'device' },
  { name: 'putSnapshotChunk', method: 'POST', path: '/v1/motebits/:motebit/snapshots/:snapshot/chunks/:chunk', auth: 'device' },
  { name: 'snapshotChunk', method: 'GET', path: '/v1/motebits/:motebit/snapshots/:snapshot/chunks/:chunk', auth: 'device' },
  { name: 'commitSnapshot', method: 'POST', path: '/v1/motebits/:motebit/snapshots/:snapshot/commit', auth: 'device' },
  { name: 'ack', method: 'POST', path: '/v1/motebits/:motebit/acks', auth: 'device' },
  { name: 'createPairing', method: 'POST', path: '/v1/pairings', auth: 'none', why: 'a new device opens a rendezvous before it belongs to any motebit (limited per address)' },
  { name: 'pairing', method: 'GET', path: '/v1/pairings/:pairing', auth: 'none', why: 'the rendezvous id is the capability, carried in the pairing code (limited per address)' },
  { name: 'pairingOffer', method: 'POST', path: '/v1/pairings/:pairing/offer', auth: 'none', why: 'the offer is checked by the new device against the code; the approval itself is a signed entry' },
  { name: 'pairingReveal', method: 'POST', path: '/v1/pairings/:pairing/reveal', auth: 'none', why: 'the nonce is worthless once the offer is made (docs/keys.md)' },
] as const satisfies readonly RouteSpec[];

export type RouteName = (typeof ROUTES)[number]['name'];

const PARAMS: Record<string, z.ZodType<string>> = {
  ':motebit': MotebitIdSchema,
  ':device': DeviceIdSchema,
  ':pairing': PairingIdSchema,
  ':snapshot': SnapshotIdSchema,
  ':chunk': ChunkIndexSchema,
};

export type RouteMatch = { kind: 'route'; route: (typeof ROUTES)[number]; params: Record<string, string> } | { kind: 'method_not_allowed'; allow: string[] } | { kind: 'not_found' };

/** The route for a method and path; method_not_allowed names the methods the path has. */
export function matchRoute(method: string, pathname: string): RouteMatch {
  const segments = pathname.split('/');
  const allow: string[] = [];
  for (const route of ROUTES) {
    const pattern = route.path.split('/');
    // The literal segments first (cheap): ids are validated only for a path whose shape fits.
    if (pattern.length !== segments.length || pattern.some((part, i) => !PARAMS[part] && part !== segments[i])) continue;
    const params: Record<string, string> = {};
    const valid = pattern.every((part, i) => {
      const schema = PARAMS[part];
      if (!schema) return true;
      params[part.slice(1)] = segments[i]!;
      return schema.safeParse(segments[i]).success;
    });
    if (!valid) continue;
    if (route.method === method) return { kind: 'route', route, params };
    allow.push(route.method);
  }
  return allow.length > 0 ? { kind: 'method_not_allowed', allow: allow.sort() } : { kind: 'not_found' };
}

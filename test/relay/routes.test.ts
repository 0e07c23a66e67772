// Walks the relay's route table (relay/routes.ts) against a real relay: every route that needs a token
// refuses a request without one, and the routes that need none are exactly the ones listed here, each with
// its reason. A new endpoint that forgets its authentication fails this test.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ROUTES } from '../../relay/routes.ts';
import type { RunningRelay } from '../../relay/server.ts';
import { genesisEntry, memberFromSecret } from '../../shared/membership/author.ts';
import { newSnapshotId } from '../../shared/ids.ts';
import { verifyLog } from '../../shared/membership/log.ts';
import { CLOSE_CODES } from '../../shared/portable/relay-api.ts';
import { RelayClient, enrolledMotebit, startTestRelay, tempDir } from './support.ts';

/** The routes anybody may call, and nothing else. Adding one here is a decision, made in review. */
const OPEN = ['health', 'createPairing', 'pairing', 'pairingOffer', 'pairingReveal'];

let dir: ReturnType<typeof tempDir>;
let relay: RunningRelay;
let client: RelayClient;
let params: Record<string, string>;
let founded: string;

beforeAll(async () => {
  dir = tempDir();
  relay = await startTestRelay(join(dir.dir, 'relay.db'));
  client = new RelayClient(relay);
  const { motebit, devices } = await enrolledMotebit(client, 1);
  const device = memberFromSecret('device', randomBytes(32), 'phone');
  const created = await client.send<{ id: string }>({ method: 'POST', path: '/v1/pairings', body: JSON.stringify({ member: device.key }) }, undefined);
  // A motebit founded by a membership log, for the route that takes its genesis without a token.
  const { entry } = await genesisEntry(memberFromSecret('device', randomBytes(32), 'laptop'), memberFromSecret('recovery', randomBytes(32), null).key, Date.now());
  founded = verifyLog([entry]).motebitId;
  await client.send({ method: 'POST', path: `/v1/motebits/${founded}/membership`, body: JSON.stringify({ entries: [entry] }) }, undefined);
  params = { motebit: motebit.motebitId, device: devices[0]!.deviceId, pairing: created.body.id, snapshot: newSnapshotId(), chunk: '0' };
});

afterAll(async () => {
  await relay.close();
  dir.cleanup();
});

const concrete = (path: string, values: Record<string, string>) => path.replace(/:(\w+)/g, (_, name: string) => values[name]!);

describe('the route table', () => {
  it('names the open routes exactly, each with why', () => {
    const open = ROUTES.filter((route) => route.auth === 'none');
    expect(open.map((route) => route.name).sort()).toEqual([...OPEN].sort());
    for (const route of ROUTES) if (route.auth === 'none' || route.auth === 'member-or-genesis') expect((route as { why?: string }).why?.length ?? 0, route.name).toBeGreaterThan(20);
  });

  for (const route of ROUTES.filter((r) => r.auth !== 'none')) {
    it(`${route.method} ${route.path} (${route.auth}) refuses a request without a token`, async () => {
      const values = route.auth === 'member-or-genesis' ? { ...params, motebit: founded } : params;
      const path = concrete(route.path, values);
      if (route.name === 'ws') {
        // A socket is nobody's until its first message authenticates it.
        const ws = new WebSocket(`${relay.url.replace(/^http/, 'ws')}${path}`);
        await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
        ws.send(JSON.stringify({ type: 'push', id: '1', events: [] }));
        const code = await new Promise<number>((resolve) => ws.once('close', resolve));
        expect(code).toBe(CLOSE_CODES.protocolError);
        return;
      }
      const answer = await client.send<{ error?: { code: string } }>({ method: route.method, path, ...(route.method === 'POST' ? { body: '{}' } : {}) }, undefined);
      expect(answer.status, `${route.name}: ${JSON.stringify(answer.body)}`).toBe(401);
      expect(answer.body.error?.code).toBe('malformed_token');
    });
  }

  it('answers a path outside the table with not_found, and a known path with another method with its methods', async () => {
    expect((await client.send({ method: 'GET', path: '/v1/motebits' }, undefined)).status).toBe(404);
    expect((await client.send({ method: 'GET', path: `/v1/motebits/${params.motebit}/nothing` }, undefined)).status).toBe(404);
    expect((await client.send({ method: 'GET', path: '/v1/motebits/not-an-id/events' }, undefined)).status).toBe(404);
    const wrong = await client.send({ method: 'DELETE', path: `/v1/motebits/${params.motebit}/events` }, undefined);
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('GET, POST');
  });
});

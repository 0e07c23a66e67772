import { afterEach, describe, expect, it } from 'vitest';
import { MAX_BATCH_EVENTS, type PullResponse, type PushResponse } from '../../shared/portable/relay-api.ts';
import { HttpTransport, checkOrder, checkResults } from '../../main/sync/http-transport.ts';
import type { StoredWireEvent } from '../../shared/portable/wire.ts';
import { EPOCH_CHANGED, EpochBinding, QUOTA_EXCEEDED, TransportError, quotaExceeded, quotaWords } from '../../main/sync/transport.ts';
import type { TestDevice } from '../relay/support.ts';
import { startRewritingProxy, type Answer, type RewritingProxy } from '../support/rewriting-proxy.ts';
import { Collector, bodyJson, deviceOptions, harnesses, jsonEvents, range, rejection, type Harness } from './support.ts';

const h = harnesses();
afterEach(() => h.cleanup());

describe('HttpTransport', () => {
  it('pushes a batch that another device receives on catchUp, page by page, in order', async () => {
    const { relay, devices } = await h.start(2);
    const [a, b] = devices as [TestDevice, TestDevice];
    const sender = new HttpTransport(deviceOptions(relay, a));
    const receiver = new HttpTransport(deviceOptions(relay, b), { pageLimit: 50 });
    const sent = new Collector();
    const got = new Collector(2);
    await sender.open(0, sent.sink);
    await receiver.open(0, got.sink);
    expect(await receiver.catchUp()).toBe(0);

    const first = jsonEvents(a, MAX_BATCH_EVENTS, (i) => ({ n: i }));
    const second = jsonEvents(a, 44, (i) => ({ n: MAX_BATCH_EVENTS + i }));
    const results = [...(await sender.push(first)), ...(await sender.push(second))];
    expect(results.map((r) => r.status === 'stored' && r.seq)).toEqual(range(1, 300));

    expect(await receiver.catchUp()).toBe(300);
    expect(got.seqs()).toEqual(range(1, 300));
    expect(got.events.map((event) => event.event_id)).toEqual([...first, ...second].map((event) => event.event_id));
    expect(bodyJson(got.events[299]!.body)).toMatchObject({ payload: { n: 299 } });
    // One sink call per page (50 events), never two at once.
    expect(got.pages).toEqual([50, 50, 50, 50, 50, 50]);
    expect(got.overlapped).toBe(false);
    // Nothing new: nothing delivered, same cursor.
    expect(await receiver.catchUp()).toBe(300);
    expect(got.events).toHaveLength(300);
    // A retried batch is answered with the same seqs.
    expect((await sender.push(second)).map((r) => r.status === 'duplicate' && r.seq)).toEqual(range(257, 300));
    await Promise.all([sender.close(), receiver.close()]);
  });

  it('resumes from a cursor with nothing missed and nothing delivered twice', async () => {
    const { relay, devices } = await h.start(2);
    const [a, b] = devices as [TestDevice, TestDevice];
    const sender = new HttpTransport(deviceOptions(relay, a));
    await sender.open(0, async () => undefined);
    await sender.push(jsonEvents(a, 120));

    const firstRun = new Collector();
    const first = new HttpTransport(deviceOptions(relay, b), { pageLimit: 100 });
    await first.open(0, firstRun.sink);
    const cursor = await first.catchUp();
    expect(cursor).toBe(120);
    await first.close();
    await expect(first.catchUp()).rejects.toBeInstanceOf(TransportError);

    await sender.push(jsonEvents(a, 30));
    const secondRun = new Collector();
    const second = new HttpTransport(deviceOptions(relay, b));
    await second.open(cursor, secondRun.sink);
    expect(await second.catchUp()).toBe(150);
    expect([...firstRun.seqs(), ...secondRun.seqs()]).toEqual(range(1, 150));
    await Promise.all([sender.close(), second.close()]);
  });

  it('concurrent catchUps deliver each event once', async () => {
    const { relay, devices } = await h.start(2);
    const [a, b] = devices as [TestDevice, TestDevice];
    const sender = new HttpTransport(deviceOptions(relay, a));
    await sender.open(0, async () => undefined);
    await sender.push(jsonEvents(a, 40));
    const got = new Collector(5);
    const receiver = new HttpTransport(deviceOptions(relay, b), { pageLimit: 10 });
    await receiver.open(0, got.sink);
    const cursors = await Promise.all([receiver.catchUp(), receiver.catchUp(), receiver.catchUp()]);
    expect(cursors).toEqual([40, 40, 40]);
    expect(got.seqs()).toEqual(range(1, 40));
    expect(got.overlapped).toBe(false);
  });

  it('a sink failure stops catchUp without advancing past the failed page', async () => {
    const { relay, devices } = await h.start(2);
    const [a, b] = devices as [TestDevice, TestDevice];
    const sender = new HttpTransport(deviceOptions(relay, a));
    await sender.open(0, async () => undefined);
    await sender.push(jsonEvents(a, 30));
    const got = new Collector();
    got.onPage = (_events, call) => {
      if (call === 1) throw new Error('disk full');
    };
    const receiver = new HttpTransport(deviceOptions(relay, b), { pageLimit: 10 });
    await receiver.open(0, got.sink);
    await expect(receiver.catchUp()).rejects.toThrow('disk full');
    expect(receiver.cursor).toBe(10);
    got.onPage = undefined;
    expect(await receiver.catchUp()).toBe(30);
    expect(got.seqs()).toEqual(range(1, 30));
  });

  it('open rejects with a network error when the relay cannot be reached', async () => {
    const { relay, devices } = await h.start(1);
    const options = deviceOptions(relay, devices[0]!);
    await relay.close();
    const error = await rejection(new HttpTransport(options).open(0, async () => undefined));
    expect(error).toBeInstanceOf(TransportError);
    expect(error).toMatchObject({ kind: 'network' });
  });
});

describe('what a relay answers, checked before it is used', () => {
  const stored = (seq: number): StoredWireEvent => ({ seq, event_id: `00000000-0000-4000-8000-${String(seq).padStart(12, '0')}`, device_id: 'dv_AAAAAAAAAAAAAAAAAAAAAA', device_seq: seq, key_id: null, body: 'e30' });
  const protocol = (run: () => void): unknown => {
    try {
      run();
    } catch (error) {
      return error instanceof TransportError ? [error.kind, error.message] : error;
    }
    return 'accepted';
  };

  it('events come strictly after the cursor, in increasing order', () => {
    expect(protocol(() => checkOrder([stored(6), stored(7), stored(9)], 5))).toBe('accepted');
    expect(protocol(() => checkOrder([], 5))).toBe('accepted');
    expect(protocol(() => checkOrder([stored(5)], 5))).toEqual(['protocol', 'the relay sent seq 5 after 5']);
    expect(protocol(() => checkOrder([stored(6), stored(8), stored(7)], 5))).toEqual(['protocol', 'the relay sent seq 7 after 8']);
    expect(protocol(() => checkOrder([stored(6), stored(6)], 5))).toEqual(['protocol', 'the relay sent seq 6 after 6']);
  });

  it('a push is answered event by event, in order', () => {
    const events = [stored(1), stored(2)].map(({ seq: _seq, ...wire }) => wire);
    const answer = (ids: string[]) => ids.map((event_id, i) => ({ event_id, status: 'stored' as const, seq: i + 1 }));
    expect(protocol(() => checkResults(answer([events[0]!.event_id, events[1]!.event_id]), events))).toBe('accepted');
    const wrong = ['protocol', 'the relay answered 2 results for 2 events, or not in order'];
    expect(protocol(() => checkResults(answer([events[1]!.event_id, events[0]!.event_id]), events))).toEqual(wrong);
    expect(protocol(() => checkResults(answer([events[0]!.event_id, events[0]!.event_id]), events))).toEqual(wrong);
    expect(protocol(() => checkResults(answer([events[0]!.event_id]), events))).toEqual(['protocol', 'the relay answered 1 results for 2 events, or not in order']);
    expect(protocol(() => checkResults(answer([events[0]!.event_id, events[1]!.event_id, events[1]!.event_id]), events))).toEqual(['protocol', 'the relay answered 3 results for 2 events, or not in order']);
  });
});

describe('the relay log a transport is bound to, and quota refusals, in words', () => {
  it('binds to the first epoch it sees and refuses another', () => {
    const binding = new EpochBinding();
    expect(binding.epoch).toBeNull();
    binding.check('ep_AAAAAAAAAAAAAAAAAAAAAA');
    binding.check('ep_AAAAAAAAAAAAAAAAAAAAAA');
    expect(binding.epoch).toBe('ep_AAAAAAAAAAAAAAAAAAAAAA');
    expect(() => binding.check('ep_BBBBBBBBBBBBBBBBBBBBBB')).toThrow(
      expect.objectContaining({ name: 'TransportError', kind: 'protocol', code: EPOCH_CHANGED, message: 'the relay now serves another log (it was replaced or restored from a copy); this device will check it and send again what it lacks' }),
    );
    expect(() => new EpochBinding('ep_AAAAAAAAAAAAAAAAAAAAAA').check('ep_BBBBBBBBBBBBBBBBBBBBBB')).toThrow(TransportError);
  });

  it('says which quota the relay refused, what it means and what to do', () => {
    const operator = "ask the relay's operator to raise the limit";
    expect(quotaWords('stored_events')).toEqual({ message: 'the relay is full for this motebit (stored data limit: number of events)', nextStep: `${operator}; nothing written on this device is lost, it is sent once there is room` });
    expect(quotaWords('stored_bytes').message).toBe('the relay is full for this motebit (stored data limit: bytes stored)');
    expect(quotaWords('devices')).toEqual({ message: 'the relay allows no more devices for this motebit (device limit)', nextStep: `revoke a device no longer used, from another device of this motebit, or ${operator}` });
    expect(quotaWords('sockets')).toEqual({ message: 'the relay has as many live connections open for this motebit as it allows (connection limit)', nextStep: `close the motebit on devices not in use, or ${operator}` });
    expect(quotaWords('snapshot_bytes')).toEqual({ message: "the relay refused this motebit's snapshot as bigger than it keeps (snapshot size limit)", nextStep: `${operator}; nothing is lost: every event stays in the log as before` });
    expect(quotaWords(undefined)).toEqual({ message: 'the relay refused: this motebit is at one of its limits there', nextStep: operator });
    expect(quotaExceeded('devices')).toMatchObject({ kind: 'refused', code: QUOTA_EXCEEDED, quota: 'devices', message: quotaWords('devices').message });
    expect(quotaExceeded(undefined)).toMatchObject({ kind: 'refused', code: QUOTA_EXCEEDED, quota: undefined });
  });
});

describe('HttpTransport against a relay that lies, and around close', () => {
  /** Devices a and b, with 3 events of a on the relay and b's transport behind a rewriting proxy. */
  async function relayWithEvents(): Promise<{ a: TestDevice; b: TestDevice; proxy: RewritingProxy; relay: Harness['relay'] }> {
    const { relay, devices } = await h.start(2);
    const [a, b] = devices as [TestDevice, TestDevice];
    const sender = new HttpTransport(deviceOptions(relay, a));
    await sender.open(0, async () => undefined);
    await sender.push(jsonEvents(a, 3));
    await sender.close();
    const proxy = await startRewritingProxy(() => relay.url);
    h.defer(() => proxy.close());
    return { a, b, proxy, relay };
  }
  const isPull = (answer: Answer): boolean => answer.method === 'GET' && answer.path.endsWith('/events');

  it('refuses to open after anything but a sequence number', async () => {
    const { relay, devices } = await h.start(1);
    const transport = new HttpTransport(deviceOptions(relay, devices[0]!));
    for (const after of [-1, 1.5]) {
      const error = await rejection(transport.open(after, async () => undefined));
      expect(error).toBeInstanceOf(RangeError);
      expect(error).toMatchObject({ message: 'after is a sequence number' });
    }
    await transport.open(0, async () => undefined);
    await transport.close();
  });

  it('binds to the epoch of the first push answer, and refuses a push answered from another log', async () => {
    const { relay, devices } = await h.start(1);
    const a = devices[0]!;
    const transport = new HttpTransport(deviceOptions(relay, a));
    await transport.open(0, async () => undefined);
    await transport.push(jsonEvents(a, 1));
    expect(transport.epoch).toBe((await transport.client.pull(0, 1)).epoch);
    const bound = new HttpTransport(deviceOptions(relay, a));
    await bound.open(1, async () => undefined, 'ep_AAAAAAAAAAAAAAAAAAAAAA');
    expect(await rejection(bound.push(jsonEvents(a, 1)))).toMatchObject({ kind: 'protocol', code: EPOCH_CHANGED });
    await Promise.all([transport.close(), bound.close()]);
  });

  it('refuses a push answered out of order', async () => {
    const { a, proxy, relay } = await relayWithEvents();
    proxy.rewrite((answer) => (answer.method === 'POST' && answer.path.endsWith('/events') ? { ...(answer.body as PushResponse), results: [...(answer.body as PushResponse).results].reverse() } : undefined));
    const transport = new HttpTransport(deviceOptions(relay, a, proxy.url));
    await transport.open(3, async () => undefined);
    expect(await rejection(transport.push(jsonEvents(a, 2)))).toMatchObject({ kind: 'protocol', message: 'the relay answered 2 results for 2 events, or not in order' });
    await transport.close();
  });

  it('refuses a page out of order, or one that says more events exist but holds none, and delivers nothing of it', async () => {
    const { b, proxy, relay } = await relayWithEvents();
    const got = new Collector();
    const transport = new HttpTransport(deviceOptions(relay, b, proxy.url));
    await transport.open(0, got.sink);
    proxy.rewrite((answer) => {
      if (!isPull(answer)) return undefined;
      const [first, second, ...rest] = (answer.body as PullResponse).events;
      return { ...(answer.body as PullResponse), events: [second, first, ...rest] };
    });
    expect(await rejection(transport.catchUp())).toMatchObject({ kind: 'protocol', message: 'the relay sent seq 1 after 2' });
    // Once: the next pull is answered honestly.
    let lied = false;
    proxy.rewrite((answer) => (isPull(answer) && !lied ? ((lied = true), { ...(answer.body as PullResponse), events: [], next: 0, more: true }) : undefined));
    expect(await rejection(transport.catchUp())).toMatchObject({ kind: 'protocol', message: 'the relay said more events exist but sent none' });
    expect([got.events, transport.cursor]).toEqual([[], 0]);
    expect(await transport.catchUp()).toBe(3);
    await transport.close();
  });

  it('a page that arrives after close is not delivered', async () => {
    const { b, proxy, relay } = await relayWithEvents();
    const got = new Collector();
    const transport = new HttpTransport(deviceOptions(relay, b, proxy.url));
    await transport.open(0, got.sink);
    // Closed while the page is on its way back.
    proxy.rewrite((answer) => void (isPull(answer) && transport.close()));
    expect(await rejection(transport.catchUp())).toMatchObject({ kind: 'network', message: 'the transport is closed' });
    expect([got.events, transport.cursor]).toEqual([[], 0]);
  });

  it('close: a catchUp waiting behind the one in progress is refused, and one asked after close is refused at once', async () => {
    const { b, relay } = await relayWithEvents();
    let entered!: () => void;
    const inSink = new Promise<void>((resolve) => (entered = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const got = new Collector();
    got.onPage = async () => {
      entered();
      await released;
    };
    const transport = new HttpTransport(deviceOptions(relay, b));
    await transport.open(0, got.sink);
    const first = transport.catchUp();
    await inSink;
    const waiting = rejection(transport.catchUp());
    const closing = transport.close();
    let refused: unknown = 'not yet';
    const after = transport.catchUp().catch((error: unknown) => void (refused = error));
    // One turn of the event loop: a refusal at once has settled by then; one behind the sink never does.
    await new Promise((resolve) => setImmediate(resolve));
    expect(refused).toMatchObject({ kind: 'network', message: 'the transport is closed' });
    release();
    expect(await first).toBe(3);
    expect(await waiting).toMatchObject({ kind: 'network', message: 'the transport is closed' });
    await Promise.all([closing, after]);
    expect(got.seqs()).toEqual([1, 2, 3]);
  });
});

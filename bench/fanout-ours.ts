// Our relay in the fan-out workload: one device of a motebit pushes over its WebSocket, the motebit's
// RECEIVERS other devices receive. A push is one 'push' message; the relay commits it (SQLite WAL,
// synchronous=FULL: fsynced), sends 'events' to every other socket of the motebit, then answers 'ack'.
// So "acknowledged" here means: durable, and already fanned out. Receivers parse the JSON message (it
// names the events); nothing is decrypted or stored on their side.
import { newEventId } from '../shared/ids.ts';
import { mintWsToken } from '../shared/token.ts';
import type { WireEvent } from '../shared/portable/wire.ts';
import { LeanSocket, Signal, newMotebit, seedRelayDb, type BenchMotebit } from './lib.ts';
import { startFleet } from './relay-fleet.ts';
import { RECEIVERS, eventBody, type System } from './fanout-workload.ts';

/** Socket tokens live 120 s (+30 s skew); a round renews them once they are this old. */
const REAUTH_AFTER_MS = 60_000;

/** One relay (its own process) over a seeded SQLite file in `dir`; `cpuMicros` reads that process. */
export async function ourSystem(dir: string): Promise<{ system: System; cpuMicros: () => Promise<number> }> {
  const motebit = newMotebit(RECEIVERS + 1);
  const dbPath = `${dir}/fanout-relay.db`;
  seedRelayDb(dbPath, [motebit]);
  const fleet = await startFleet(dbPath, 1);
  const system = await relaySystem('our relay', fleet.urls, fleet.audience, motebit, () => fleet.stop());
  return { system, cpuMicros: () => fleet.cpuMicros() };
}

/**
 * Our relay's side of the workload over one or more instances of one relay (same database, same audience):
 * the pusher (the motebit's first device) on the first instance, receiver r on instance r mod N.
 * `stop` stops the instances; it is called on close and when connecting fails.
 */
export async function relaySystem(name: string, urls: readonly string[], audience: string, motebit: BenchMotebit, stop: () => Promise<void>): Promise<System> {
  const sockets: LeanSocket[] = [];
  try {
    const [pusherDevice, ...receiverDevices] = motebit.devices;
    if (receiverDevices.length !== RECEIVERS) throw new Error(`the fan-out motebit needs ${RECEIVERS + 1} devices`);
    const body = eventBody();
    const batchOfLastEvent = new Map<string, number>();
    const reauthed = new Signal();
    let reauthCount = 0;
    let authedAt = performance.now();
    let deviceSeq = 0;
    const pusher = await LeanSocket.connect(urls[0]!, motebit.motebitId, pusherDevice!, audience);
    sockets.push(pusher);
    const system: System = {
      name,
      onBatch: () => undefined,
      onAck: () => undefined,
      onError: () => undefined,
      push(index, size) {
        const events: WireEvent[] = Array.from({ length: size }, () => ({ event_id: newEventId(), device_id: pusherDevice!.deviceId, device_seq: ++deviceSeq, key_id: 'k1', body }));
        batchOfLastEvent.set(events.at(-1)!.event_id, index);
        pusher.ws.send(JSON.stringify({ type: 'push', id: String(index), events }));
      },
      async refresh() {
        if (performance.now() - authedAt < REAUTH_AFTER_MS) return;
        const before = reauthCount;
        sockets.forEach((socket, i) => {
          const device = motebit.devices[i]!;
          socket.ws.send(JSON.stringify({ type: 'reauth', token: mintWsToken({ motebitId: motebit.motebitId, signer: device.deviceId, key: device.key, audience }) }));
        });
        await reauthed.wait(() => reauthCount - before >= sockets.length, 20_000, `${name}: re-authentication of ${sockets.length} sockets`);
        authedAt = performance.now();
      },
      async close() {
        for (const socket of sockets) socket.close();
        await stop();
      },
    };
    const onReauthed = (message: { type: string }): boolean => {
      if (message.type !== 'reauthed') return false;
      reauthCount++;
      reauthed.poke();
      return true;
    };
    pusher.onMessage = (message) => {
      if (onReauthed(message)) return;
      if (message.type === 'ack' && message.stored === (message.results as unknown[]).length) system.onAck();
      else if (message.type === 'ack' || message.type === 'error') system.onError(new Error(`the relay refused a push: ${JSON.stringify(message).slice(0, 300)}`));
    };
    pusher.ws.on('close', (code) => system.onError(new Error(`the pusher's socket closed (${code})`)));
    const connected = await Promise.all(receiverDevices.map((device, r) => LeanSocket.connect(urls[r % urls.length]!, motebit.motebitId, device, audience)));
    authedAt = performance.now();
    connected.forEach((socket, receiver) => {
      sockets.push(socket);
      socket.ws.on('close', (code) => system.onError(new Error(`receiver ${receiver}'s socket closed (${code})`)));
      socket.onMessage = (message) => {
        if (!onReauthed(message) && message.type === 'error') system.onError(new Error(`receiver ${receiver} got an error: ${JSON.stringify(message).slice(0, 300)}`));
      };
      socket.onEvents = (events, at) => {
        for (const event of events) {
          const index = batchOfLastEvent.get(event.event_id);
          if (index !== undefined) system.onBatch(receiver, index, at);
        }
      };
    });
    return system;
  } catch (error) {
    for (const socket of sockets) socket.close();
    await stop();
    throw error;
  }
}

// Child process for the crash test: appends events as fast as it can and prints "ack <event_id>" only after
// append() has returned, so every printed id is an acknowledged write. It never stops by itself; the
// parent kills it with SIGKILL.
import { EventStore } from '../../main/store/event-store.ts';

const [path, motebitId, deviceId, identityKeyHex] = process.argv.slice(2);
if (!path || !motebitId || !deviceId || !identityKeyHex) throw new Error('usage: crash-writer PATH MOTEBIT DEVICE IDENTITY_KEY_HEX');
const store = EventStore.open(path, { motebitId, deviceId, identityPublicKey: Buffer.from(identityKeyHex, 'hex') });

for (let i = 0; ; i++) {
  // Alternate single appends with small batches (an import): both must be all-or-nothing and durable.
  const events =
    i % 5 === 0
      ? store.appendMany([0, 1, 2].map((k) => ({ entity: `batch/${i}/${k}`, op: 'set' as const, payload: { i, k } })))
      : [store.put(`memory/${i % 50}`, { i, text: 'x'.repeat(i % 200) })];
  process.stdout.write(events.map((e) => `ack ${e.event_id}\n`).join(''));
}

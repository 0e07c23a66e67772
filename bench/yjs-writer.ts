// The writer's side of the Yjs peers (Hocuspocus, y-websocket): each push sets `size` new keys of one
// Y.Map to the bench's 1 KB event body in one transaction, and yields the update that transaction made.
import * as Y from 'yjs';
import { eventBody } from './fanout-workload.ts';

export function yjsWriter(): (size: number) => Uint8Array {
  const body = eventBody();
  const doc = new Y.Doc();
  const map = doc.getMap<string>('events');
  let key = 0;
  let pending: Uint8Array | null = null;
  doc.on('update', (update: Uint8Array) => {
    pending = update;
  });
  return (size) => {
    doc.transact(() => {
      for (let i = 0; i < size; i++) map.set(`e${++key}`, body);
    });
    const update = pending!;
    pending = null;
    return update;
  };
}

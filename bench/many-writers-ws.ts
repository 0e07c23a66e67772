// Many writers over WebSocket, the transport devices use by default (main/app/device.ts; HTTP is their
// fallback): each device authenticates one socket, then sends its pushes on it, one at a time; the ack is
// the relay's 'ack' message, sent after the append's commit (fsynced) and after the event went out to
// the motebit's sockets (the sibling's and the writer's own). One commit per push: the socket's token was
// spent once, at auth.
//
// All sockets come from 127.0.0.1, so they open at the pace the relay's DEFAULT per-address limits allow
// (at most 32 waiting to authenticate, auths 100 at once then 10/s): a refused socket is retried. In the
// field 200 devices come from many addresses; this only makes setup slower, outside any measurement.
import { mintWsToken } from '../shared/token.ts';
import { LeanSocket, Signal, inParallel, sleep } from './lib.ts';
import { allAtOnce, nextEvent, type Writer, type Writers } from './many-writers-workload.ts';
import { progress } from './support.ts';

const CONNECTING_AT_ONCE = 16;
const RETRY_MS = 250;
const MAX_ATTEMPTS = 400;
/** Socket tokens live 120 s (+30 s skew); a round renews them once they are this old. */
const REAUTH_AFTER_MS = 60_000;

async function connectPatiently(url: string, writer: Writer, audience: string): Promise<LeanSocket> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await LeanSocket.connect(url, writer.motebit.motebitId, writer.device, audience);
    } catch (error) {
      if (attempt >= MAX_ATTEMPTS) throw error;
      await sleep(RETRY_MS);
    }
  }
}

export async function wsWriters(url: string, audience: string, writers: readonly Writer[]): Promise<Writers> {
  const sockets: LeanSocket[] = new Array<LeanSocket>(writers.length);
  const start = performance.now();
  try {
    await inParallel(writers, CONNECTING_AT_ONCE, async (writer, index) => {
      sockets[index] = await connectPatiently(url, writer, audience);
    });
  } catch (error) {
    for (const socket of sockets) socket?.close();
    throw error;
  }
  let authedAt = performance.now();
  progress(`many writers: ${writers.length} WebSockets authenticated in ${((authedAt - start) / 1000).toFixed(1)} s under the default per-address limits`);

  const pending: Array<{ resolve: () => void; reject: (error: Error) => void } | undefined> = [];
  const reauthed = new Signal();
  let reauthCount = 0;
  sockets.forEach((socket, index) => {
    const fail = (error: Error): void => {
      pending[index]?.reject(error);
      pending[index] = undefined;
    };
    socket.ws.on('close', (code) => fail(new Error(`writer ${index}'s socket closed (${code})`)));
    socket.onMessage = (message) => {
      if (message.type === 'reauthed') {
        reauthCount++;
        reauthed.poke();
      } else if (message.type === 'ack' && message.stored === 1) {
        pending[index]?.resolve();
        pending[index] = undefined;
      } else if (message.type === 'ack' || message.type === 'error') fail(new Error(`the relay refused a push: ${JSON.stringify(message).slice(0, 300)}`));
    };
  });

  return {
    async refresh() {
      if (performance.now() - authedAt < REAUTH_AFTER_MS) return;
      const before = reauthCount;
      sockets.forEach((socket, index) => {
        const { motebit, device } = writers[index]!;
        socket.ws.send(JSON.stringify({ type: 'reauth', token: mintWsToken({ motebitId: motebit.motebitId, signer: device.deviceId, key: device.key, audience }) }));
      });
      await reauthed.wait(() => reauthCount - before >= sockets.length, 30_000, `re-authentication of ${sockets.length} sockets`);
      authedAt = performance.now();
    },
    round: (pushes) =>
      allAtOnce(writers, pushes, (writer, index) => {
        const event = nextEvent(writer);
        return new Promise<void>((resolve, reject) => {
          pending[index] = { resolve, reject };
          sockets[index]!.ws.send(JSON.stringify({ type: 'push', id: String(event.device_seq), events: [event] }));
        });
      }),
    close() {
      for (const socket of sockets) socket.close();
    },
  };
}

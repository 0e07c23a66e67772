// Many writers over HTTP: each device's RelayClient (the device's own HTTP client) POSTs its pushes, one
// at a time. Each request carries a fresh single-use token, so the relay commits twice per push: the
// token's nonce, then the append (both fsynced). The ack is the HTTP answer (after the append's commit).
import { RelayClient } from '../main/sync/relay-client.ts';
import { allAtOnce, nextEvent, type Writer, type Writers } from './many-writers-workload.ts';

export async function httpWriters(url: string, audience: string, writers: readonly Writer[]): Promise<Writers> {
  const clients = writers.map(
    ({ motebit, device }) => new RelayClient({ relayUrl: url, audience, motebitId: motebit.motebitId, deviceId: device.deviceId, deviceKey: device.key, timeoutMs: 60_000 }),
  );
  // Open each device's kept-alive connection before any clock starts.
  await Promise.all(clients.map((client) => client.health()));
  return {
    refresh: async () => undefined,
    round: (pushes) =>
      allAtOnce(writers, pushes, async (writer, index) => {
        const answer = await clients[index]!.push([nextEvent(writer)]);
        if (answer.stored !== 1) throw new Error(`the relay did not store a push: ${JSON.stringify(answer).slice(0, 300)}`);
      }),
    close: () => undefined,
  };
}

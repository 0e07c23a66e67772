// Fuzzes the relay's HTTP and WebSocket layers with raw bytes over real TCP sockets, against the real
// CLI (`node relay/bin.ts --port 0 --db <tmp>/relay.db --log-level debug`: debug, so every response is
// logged and checked for secrets) as a child process. After EVERY case the process is still running and
// GET /healthz answers 200 on a NEW connection within a bound (while the case's socket is still open, if
// the relay kept it); every ROUND_TRIP_EVERY cases and at the end a real device still syncs (HTTP push
// and pull, WebSocket delivery); the relay never answers 500; and its logs never carry a token or an
// Authorization value that was sent. Generators and helpers: test/relay/fuzz/.
//
// Default (CI): 300 HTTP cases + 200 WebSocket cases (about 45 s here). The seed is printed first.
// A longer run, N HTTP cases + N WebSocket cases (3000 took about 10 minutes on 2 busy cores):
//   FUZZ_RUNS=3000 npx vitest run test/relay/fuzz.test.ts
//   FUZZ_RUNS=3000 FUZZ_SEED=123 npx vitest run test/relay/fuzz.test.ts      # replay one seed
//   FUZZ_SHRINK=1 …    # on a failure, shrink to a minimal case (a new relay process after each crash)
// A failing case's exact bytes are written to test-output/relay-fuzz/.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { preview } from './fuzz/bytes.ts';
import { Fixture } from './fuzz/fixture.ts';
import { rawHttpCase, signedHttpCase, type HttpCase } from './fuzz/http-gen.ts';
import { RawSession } from './fuzz/raw-socket.ts';
import { Tally } from './fuzz/tally.ts';
import { playAuthedWs, playHttp, playWs, type Played, type Timing } from './fuzz/run-case.ts';
import { authedWsCase, wsCase, type AuthedWsCase, type WsCase } from './fuzz/ws-gen.ts';

function intFromEnv(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  if (!/^-?[0-9]+$/.test(raw)) throw new Error(`${name} must be an integer, not ${JSON.stringify(raw)}`);
  return Number(raw);
}
const RUNS = intFromEnv('FUZZ_RUNS');
const HTTP_RUNS = RUNS ?? 300;
const WS_RUNS = RUNS ?? 200;
const SEED = intFromEnv('FUZZ_SEED') ?? Math.floor(Math.random() * 2 ** 31);
const SHRINK = process.env.FUZZ_SHRINK === '1';
const ROUND_TRIP_EVERY = 25;
const TIMING: Timing = { deadlineMs: 2000, idleMs: 300 };
const BOUNDS = { healthMs: 3000, roundTripMs: 10_000 };
const OUT = join(import.meta.dirname, '../../test-output/relay-fuzz');
/** Bounded by count, never by time; this only stops a run that is stuck beyond every per-case bound. */
const timeoutFor = (runs: number): number => 60_000 + runs * 15_000;

// The request line that once ended the process (new URL() threw in an event-emitter callback).
const KNOWN_HTTP: HttpCase = {
  method: 'GET', target: 'http://[', version: 'HTTP/1.1', eol: '\r\n', host: '127.0.0.1', headers: [], contentType: null,
  auth: { a: 'none' }, body: { b: 'none' }, framing: { f: 'length' }, splits: [], halfClose: false, pipeline: 'none',
};
const KNOWN_WS: WsCase = {
  upgrade: { method: 'GET', target: 'http://[', key: 'valid', version: '13', upgrade: 'websocket', connection: 'Upgrade', extra: [] },
  groups: [], timing: 'with-upgrade', end: 'hold',
};

type Case = { kind: 'http'; c: HttpCase } | { kind: 'ws'; c: WsCase } | { kind: 'authed-ws'; c: AuthedWsCase };

let fx: Fixture;
let played = 0;
const tally = new Tally();

beforeAll(async () => {
  console.log(`relay fuzz: seed ${SEED} (replay with FUZZ_SEED=${SEED}), ${HTTP_RUNS} HTTP + ${WS_RUNS} WebSocket cases`);
  fx = await Fixture.start(BOUNDS);
});

afterAll(async () => {
  await fx?.stop();
});

async function play(entry: Case): Promise<Played> {
  switch (entry.kind) {
    case 'http':
      return playHttp(fx, entry.c, TIMING);
    case 'ws':
      return playWs(fx, entry.c, TIMING);
    case 'authed-ws':
      return playAuthedWs(fx, entry.c, TIMING);
  }
}

/** Plays a case, then checks the relay; a failure names the exact bytes (also saved to test-output/). */
async function runCase(entry: Case): Promise<Played> {
  await fx.ensureRunning(); // after a crash (already reported), the next case or shrink step gets a new process
  let outcome: Played | undefined;
  try {
    outcome = await play(entry);
    const answered = outcome.result.received.toString('latin1');
    if (/^HTTP\/1\.[01] 500 /m.test(answered)) throw new Error('the relay answered 500 (internal: a bug by docs/protocol.md §7)');
    if (answered.startsWith('HTTP/1.1 101') && answered.indexOf('HTTP/1.1 ', 12) > 0) throw new Error('the relay wrote an HTTP answer after its 101, into the WebSocket stream');
    tally.add(entry.kind, outcome.result);
    await fx.checkAlive(); // on a NEW connection, while the case's socket is still open if the relay kept it
    outcome.session.destroy();
    if (++played % ROUND_TRIP_EVERY === 0) await fx.roundTrip();
    return outcome;
  } catch (error) {
    outcome?.session.destroy();
    const sent = outcome?.sent;
    let saved = '';
    if (sent) {
      mkdirSync(OUT, { recursive: true });
      saved = join(OUT, `failure-seed${SEED}-${Date.now()}.bin`);
      writeFileSync(saved, sent);
    }
    const answer = outcome ? preview(outcome.result.received, 400) : '(none)';
    throw new Error(`${error instanceof Error ? error.message : String(error)}\ncase kind: ${entry.kind}\nsent ${sent ? preview(sent) : '(not rendered)'}${saved ? `\nexact bytes: ${saved}` : ''}\nanswer ${answer}`, { cause: error });
  }
}

const params = (runs: number) => ({ numRuns: runs, seed: SEED, endOnFailure: !SHRINK, verbose: 1 as const });

describe('relay fuzz (raw bytes over real sockets, relay as a child process)', () => {
  it('known regression: the request line "GET http://[ HTTP/1.1" is refused with 400 and the relay lives', async () => {
    const { result } = await runCase({ kind: 'http', c: KNOWN_HTTP });
    expect(result.received.toString('latin1')).toMatch(/^HTTP\/1\.1 400 /);
  });

  it('known regression: a WebSocket upgrade to "http://[" is refused and the relay lives', async () => {
    const { result } = await runCase({ kind: 'ws', c: KNOWN_WS });
    expect(result.received.toString('latin1')).toMatch(/^HTTP\/1\.1 4\d\d /);
    // The same bytes once more, sent in pieces and without waiting, on a connection the client then holds.
    const session = await RawSession.open(fx.port, TIMING.deadlineMs);
    session.write(Buffer.from('GET http://[ HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n'));
    session.write(Buffer.from('Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'));
    await session.settle(TIMING.idleMs);
    await fx.checkAlive();
    session.destroy();
    await fx.roundTrip();
  });

  it(`HTTP: ${HTTP_RUNS} generated requests (raw and validly signed) leave the relay alive and syncing`, async () => {
    tally.take('');
    const arb = fc.oneof({ arbitrary: rawHttpCase, weight: 2 }, { arbitrary: signedHttpCase, weight: 1 }).map((c): Case => ({ kind: 'http', c }));
    await fc.assert(
      fc.asyncProperty(arb, async (entry) => void (await runCase(entry))),
      { ...params(HTTP_RUNS), examples: [[{ kind: 'http', c: KNOWN_HTTP }]] },
    );
    await fx.roundTrip();
    console.log(tally.take('HTTP cases'));
  }, timeoutFor(HTTP_RUNS));

  it(`WebSocket: ${WS_RUNS} generated upgrades, frames and post-auth messages leave the relay alive and syncing`, async () => {
    tally.take('');
    const arb = fc.oneof(wsCase.map((c): Case => ({ kind: 'ws', c })), authedWsCase.map((c): Case => ({ kind: 'authed-ws', c })));
    await fc.assert(
      fc.asyncProperty(arb, async (entry) => void (await runCase(entry))),
      { ...params(WS_RUNS), examples: [[{ kind: 'ws', c: KNOWN_WS }]] },
    );
    await fx.roundTrip();
    console.log(tally.take('WebSocket cases'));
  }, timeoutFor(WS_RUNS));

  it('never logs a token or an Authorization value it was sent, and logs only JSON lines', () => {
    const stderr = fx.allStderr();
    expect(fx.secrets.leaked(stderr)).toEqual([]);
    const lines = stderr.split('\n').filter((line) => line.trim() !== '');
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(() => JSON.parse(line) as unknown, line.slice(0, 300)).not.toThrow();
    // Warnings and errors the relay logged (not failures by themselves; a crash or a 500 already is one).
    const notable = new Map<string, number>();
    for (const line of lines) {
      const entry = JSON.parse(line) as { level: number; msg: string; err?: string; code?: string };
      if (entry.level < 40) continue;
      const key = `${entry.level} ${entry.msg}${entry.err ? `: ${entry.err}` : ''}`;
      notable.set(key, (notable.get(key) ?? 0) + 1);
    }
    console.log(`relay warnings and errors: ${notable.size ? [...notable].map(([key, n]) => `\n  ${n} × ${key}`).join('') : 'none'}`);
  });
});

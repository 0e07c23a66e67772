// The live target of the fuzzer: a relay child process over a SQLite file in a temp dir, one enrolled
// motebit (a fuzzing device, a syncing and a watching device that only the round trip uses, and a
// victim device fuzz cases may revoke), the render context for cases, and the checks run between them.
import { join } from 'node:path';
import { toBase64Url } from '../../../shared/encoding.ts';
import { WS_METHOD, nowSeconds, wsPath } from '../../../shared/token.ts';
import { testDb } from '../../support/test-db.ts';
import { RelayClient, TestMotebit, enrolledMotebit, tempDir, type TestDevice } from '../support.ts';
import type { HttpContext } from './http-gen.ts';
import type { TokenKind } from './json-gen.ts';
import { deviceRoundTrip, healthz } from './probes.ts';
import { RelayProcess } from './relay-process.ts';
import { SecretWatch } from './secrets.ts';

export interface Bounds {
  /** /healthz must answer 200 on a new connection within this. */
  healthMs: number;
  /** The whole device round trip (push, pull, WebSocket delivery) within this. */
  roundTripMs: number;
}

export class Fixture {
  readonly secrets = new SecretWatch();
  readonly ctx: HttpContext;
  readonly #dir: ReturnType<typeof tempDir>;
  readonly #bounds: Bounds;
  readonly #dead: RelayProcess[] = [];
  #relay: RelayProcess;
  #client: RelayClient;
  #motebit: TestMotebit;
  #fuzzer: TestDevice;
  #syncer: TestDevice;
  #watcher: TestDevice;
  #checkedUpTo = 0;

  private constructor(dir: ReturnType<typeof tempDir>, relay: RelayProcess, bounds: Bounds, motebit: TestMotebit, devices: TestDevice[]) {
    this.#dir = dir;
    this.#relay = relay;
    this.#bounds = bounds;
    this.#client = new RelayClient({ url: relay.url, audience: relay.url });
    this.#motebit = motebit;
    [this.#fuzzer, this.#syncer, this.#watcher] = devices as [TestDevice, TestDevice, TestDevice];
    const victim = devices[3]!;
    const stranger = new TestMotebit();
    const secrets = this.secrets;
    const audience = (): string => this.#relay.url;
    this.ctx = {
      motebitId: motebit.motebitId,
      victimDeviceId: victim.deviceId,
      strangerMotebitId: stranger.motebitId,
      event: () => ({ ...this.#fuzzer.events(1)[0]! }),
      enrolBody: () => JSON.parse(motebit.enrolBody(motebit.device('fuzzed'))) as Record<string, unknown>,
      token: (kind: TokenKind) => secrets.token(this.#token(kind, audience())),
      deviceToken: (method, path, body) => secrets.token(this.#fuzzer.token(audience(), { method, path, body })),
      identityToken: (method, path, body) => secrets.token(motebit.identityToken(audience(), { method, path, body })),
      secretHeader: (value) => secrets.header(value),
    };
  }

  static async start(bounds: Bounds): Promise<Fixture> {
    const dir = tempDir();
    const relay = await RelayProcess.start(await testDb(join(dir.dir, 'relay.db')));
    const { motebit, devices } = await enrolledMotebit(new RelayClient({ url: relay.url, audience: relay.url }), 4);
    return new Fixture(dir, relay, bounds, motebit, devices);
  }

  get port(): number {
    return this.#relay.port;
  }

  get relay(): RelayProcess {
    return this.#relay;
  }

  /** After a crash (so a failing case can be shrunk): a new relay process over the same database. */
  async ensureRunning(): Promise<void> {
    if (!this.#relay.exited) return;
    this.#dead.push(this.#relay);
    this.#relay = await RelayProcess.start(await testDb(join(this.#dir.dir, 'relay.db')));
    this.#client = new RelayClient({ url: this.#relay.url, audience: this.#relay.url });
    this.#checkedUpTo = 0;
  }

  /** The relay is alive, answers /healthz on a new connection within the bound, and logged no secret. */
  async checkAlive(): Promise<void> {
    this.#assertRunning();
    let health: { status: number; body: string };
    try {
      health = await healthz(this.port, this.#bounds.healthMs);
    } catch (error) {
      // A refused connection usually means the process is on its way out: give the exit a moment to land.
      await this.#relay.exitedWithin(1000);
      this.#assertRunning();
      throw new Error(`the relay is running but /healthz failed: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (health.status !== 200) throw new Error(`/healthz answered ${health.status} ${health.body}`);
    const stderr = this.#relay.stderr();
    // Only the new part (from a little before, so a secret cut across two checks is still seen).
    const leaked = this.secrets.leaked(stderr.slice(Math.max(0, this.#checkedUpTo - 4096)));
    this.#checkedUpTo = stderr.length;
    if (leaked.length) throw new Error(`the relay logged a secret it was sent: ${JSON.stringify(leaked[0])}`);
  }

  /** A real device still syncs (HTTP push + pull, WebSocket delivery). */
  async roundTrip(): Promise<number> {
    this.#assertRunning();
    return deviceRoundTrip(this.#client, this.#syncer, this.#watcher, this.#bounds.roundTripMs);
  }

  /** Everything every relay process of this fixture wrote on stderr. */
  allStderr(): string {
    return [...this.#dead, this.#relay].map((relay) => relay.stderr()).join('');
  }

  async stop(): Promise<void> {
    await this.#relay.stop();
    this.#dir.cleanup();
  }

  #assertRunning(): void {
    const exited = this.#relay.exited;
    if (exited) throw new Error(`the relay process ended (${exited}); stderr tail:\n${this.#relay.stderr().slice(-3000)}`);
  }

  #token(kind: TokenKind, audience: string): string {
    switch (kind) {
      case 'ws-valid':
        return this.#fuzzer.wsToken(audience);
      case 'ws-other-device':
        return this.#syncer.wsToken(audience);
      case 'ws-expired':
        return this.#fuzzer.wsToken(audience, { iat: nowSeconds() - 1000, lifetime: 60 });
      case 'ws-identity':
        return this.#motebit.identityToken(audience, { method: WS_METHOD, path: wsPath(this.#motebit.motebitId) });
      case 'http-token':
        return this.#fuzzer.token(audience, { method: 'GET', path: '/healthz' });
      case 'garbage':
        return `${toBase64Url(Buffer.from('{"v":1}'))}.${'A'.repeat(86)}`;
    }
  }
}

// Helpers shared by the relay benchmarks: child processes driven over IPC (so a relay, a peer relay or a
// syncing device is measured alone, in its own process), keys and devices, seeding a relay database
// directly, percentiles, and a lean WebSocket client of our relay protocol.
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import WebSocket from 'ws';
import { SqliteStore } from '../relay/sqlite-store.ts';
import { randomSeed, signingKeyFromSeed, type SigningKey } from '../shared/crypto.ts';
import { toBase64Url } from '../shared/encoding.ts';
import { certifyDevice } from '../shared/event.ts';
import { deviceIdFromDeviceKey, motebitIdFromIdentityKey, newLogEpoch } from '../shared/ids.ts';
import { mintWsToken } from '../shared/token.ts';
import type { StoredWireEvent } from '../shared/portable/wire.ts';

// ---- child processes ----------------------------------------------------------------------------

interface Reply {
  type: 'ready' | 'result' | 'error';
  id?: number;
  value?: unknown;
  message?: string;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Whatever happens to the bench (error, ^C), no child outlives it. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      for (const child of live) child.kill('SIGKILL');
      process.exit(130);
    });
  }
}

/** A child process running one of the bench/*-child.ts scripts, called like a remote object. */
export class Child {
  readonly process: ChildProcess;
  readonly exited: Promise<number | null>;
  #nextId = 1;
  readonly #waiting = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();

  private constructor(child: ChildProcess) {
    this.process = child;
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    child.on('message', (raw) => {
      const reply = raw as Reply;
      if (reply.id === undefined) return;
      const waiter = this.#waiting.get(reply.id);
      if (!waiter) return;
      this.#waiting.delete(reply.id);
      if (reply.type === 'error') waiter.reject(new Error(reply.message ?? 'child failed'));
      else waiter.resolve(reply.value);
    });
    void this.exited.then((code) => {
      live.delete(child);
      for (const waiter of this.#waiting.values()) waiter.reject(new Error(`child exited (${code}) before answering`));
      this.#waiting.clear();
    });
  }

  /** Forks `script` (a path relative to bench/) with `init` and waits for it to say it is ready. */
  static async start<T>(script: string, init: unknown, options: { execArgv?: string[]; timeoutMs?: number } = {}): Promise<{ child: Child; ready: T }> {
    installExitHook();
    const path = fileURLToPath(new URL(script, import.meta.url));
    const proc = fork(path, [JSON.stringify(init)], {
      // BENCH_CPU_PROF=<dir> profiles every child (node --cpu-prof) to find where a figure's time goes.
      execArgv: ['--expose-gc', ...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : []), ...(options.execArgv ?? [])],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    live.add(proc);
    const child = new Child(proc);
    const timeoutMs = options.timeoutMs ?? 30_000;
    try {
      const ready = await new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${script} did not start within ${timeoutMs} ms`)), timeoutMs);
        proc.on('message', (raw) => {
          const reply = raw as Reply;
          if (reply.type === 'ready') {
            clearTimeout(timer);
            resolve(reply.value as T);
          } else if (reply.type === 'error' && reply.id === undefined) {
            clearTimeout(timer);
            reject(new Error(`${script}: ${reply.message}`));
          }
        });
        void child.exited.then((code) => {
          clearTimeout(timer);
          reject(new Error(`${script} exited (${code}) while starting`));
        });
      });
      return { child, ready };
    } catch (error) {
      child.kill();
      throw error;
    }
  }

  call<T>(name: string, args: unknown = null, timeoutMs = 120_000): Promise<T> {
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        reject(new Error(`child call ${name} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiting.set(id, {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value as T);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.process.send({ type: 'call', id, name, args });
    });
  }

  /** Asks the child to stop (it cleans up and exits); kills it if it has not exited within `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    if (this.process.connected) this.process.send({ type: 'call', id: 0, name: 'stop', args: null });
    const timer = setTimeout(() => this.kill(), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  kill(): void {
    if (this.process.exitCode === null && this.process.signalCode === null) this.process.kill('SIGKILL');
  }
}

/** The child side: the init argument, then named handlers answering calls; 'stop' runs `onStop` and exits. */
export function serveChild(handlers: Record<string, (args: never) => unknown>, onStop: () => unknown = () => undefined): void {
  const send = (message: Reply) => process.send?.(message);
  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    try {
      await onStop();
    } finally {
      process.exit(0);
    }
  };
  process.on('disconnect', () => void stop()); // the bench went away: never linger
  process.on('message', (raw) => {
    const message = raw as { type: string; id: number; name: string; args: never };
    if (message.type !== 'call') return;
    if (message.name === 'stop') {
      void stop();
      return;
    }
    const handler = handlers[message.name];
    if (!handler) {
      send({ type: 'error', id: message.id, message: `no handler ${message.name}` });
      return;
    }
    Promise.resolve()
      .then(() => handler(message.args))
      .then(
        (value) => send({ type: 'result', id: message.id, value }),
        (error: unknown) => send({ type: 'error', id: message.id, message: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
      );
  });
}

export function childInit<T>(): T {
  return JSON.parse(process.argv[2] ?? '{}') as T;
}

export function childReady(value: unknown): void {
  process.send?.({ type: 'ready', value });
}

export function childFailed(error: unknown): never {
  process.send?.({ type: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  process.exit(1);
}

/** User + system CPU µs this process has used so far (all its threads: libuv's pool and native stores included). */
export function processCpuMicros(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}

/** Resident and heap bytes after a full garbage collection (the process runs with --expose-gc). */
export function settledMemory(): { rss: number; heapUsed: number; external: number } {
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 3; i++) gc?.();
  const usage = process.memoryUsage();
  return { rss: usage.rss, heapUsed: usage.heapUsed, external: usage.external + usage.arrayBuffers };
}

// ---- identities and devices ---------------------------------------------------------------------

export interface BenchDevice {
  readonly seed: Buffer;
  readonly key: SigningKey;
  readonly deviceId: string;
  readonly cert: string;
}

export interface BenchMotebit {
  readonly identitySeed: Buffer;
  readonly identity: SigningKey;
  readonly motebitId: string;
  readonly devices: BenchDevice[];
}

export function newMotebit(deviceCount: number): BenchMotebit {
  const identitySeed = randomSeed();
  const identity = signingKeyFromSeed(identitySeed);
  const motebitId = motebitIdFromIdentityKey(identity.publicKey);
  const devices = Array.from({ length: deviceCount }, () => {
    const seed = randomSeed();
    const key = signingKeyFromSeed(seed);
    return { seed, key, deviceId: deviceIdFromDeviceKey(key.publicKey), cert: certifyDevice(identity, motebitId, key.publicKey) };
  });
  return { identitySeed, identity, motebitId, devices };
}

/**
 * Creates a relay database (the relay's own schema, made by its own store) and registers the motebits
 * and their devices in one transaction: what enrolment writes, without thousands of HTTP round trips.
 */
export function seedRelayDb(path: string, motebits: readonly BenchMotebit[]): void {
  void new SqliteStore(path).close();
  const db = new Database(path);
  try {
    const now = Date.now();
    const motebit = db.prepare('INSERT INTO motebits (motebit_id, identity_key, head, created_at, epoch) VALUES (?, ?, 0, ?, ?)');
    const device = db.prepare('INSERT INTO devices (motebit_id, device_id, key, cert, name, enrolled_at, revoked_at) VALUES (?, ?, ?, ?, NULL, ?, NULL)');
    db.transaction(() => {
      for (const m of motebits) {
        motebit.run(m.motebitId, m.identity.publicKey, now, newLogEpoch());
        for (const d of m.devices) device.run(m.motebitId, d.deviceId, d.key.publicKey, d.cert, now);
      }
    })();
  } finally {
    db.close();
  }
}

export const enrolBody = (motebit: BenchMotebit, device: BenchDevice): string =>
  JSON.stringify({ identity_key: toBase64Url(motebit.identity.publicKey), device_key: toBase64Url(device.key.publicKey), cert: device.cert });

// ---- numbers ------------------------------------------------------------------------------------

/** The p-th percentile (0..100) by nearest rank. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `fn` over `items` with at most `limit` at once. */
export async function inParallel<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      await fn(items[index]!, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** The soft and hard limit on open files of this process (Linux), or null when unknown. */
export function openFileLimit(): { soft: number; hard: number } | null {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const [soft, hard] = (line?.match(/(\d+|unlimited)\s+(\d+|unlimited)/)?.slice(1) ?? []).map((v) => (v === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(v)));
    return soft === undefined || hard === undefined ? null : { soft, hard };
  } catch {
    return null;
  }
}

// ---- a lean client of our relay's WebSocket -----------------------------------------------------

/**
 * One device's socket, as thin as the protocol allows: auth, then every 'events' message is parsed and
 * handed to `onEvents` with its receipt time. No decryption or store: the fan-out figure is the relay's.
 */
export class LeanSocket {
  readonly ws: WebSocket;
  received = 0;
  onEvents: ((events: StoredWireEvent[], at: number) => void) | undefined;
  onMessage: ((message: { type: string; [key: string]: unknown }) => void) | undefined;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data) => {
      const at = performance.now();
      const message = JSON.parse(String(data)) as { type: string; events?: StoredWireEvent[] };
      if (message.type === 'events' && message.events) {
        this.received += message.events.length;
        this.onEvents?.(message.events, at);
      }
      this.onMessage?.(message);
    });
  }

  static async connect(url: string, motebitId: string, device: BenchDevice, audience: string, after = 0): Promise<LeanSocket> {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/motebits/${motebitId}/ws`, { perMessageDeflate: false });
    const socket = new LeanSocket(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('close', (code) => reject(new Error(`socket closed (${code}) before open`)));
    });
    ws.on('error', () => undefined);
    const ready = new Promise<void>((resolve, reject) => {
      socket.onMessage = (message) => {
        if (message.type === 'caught_up') resolve();
      };
      ws.once('close', (code, reason) => reject(new Error(`socket closed (${code} ${String(reason)}) before caught_up`)));
    });
    ws.send(JSON.stringify({ type: 'auth', token: mintWsToken({ motebitId, signer: device.deviceId, key: device.key, audience }), after }));
    await ready;
    socket.onMessage = undefined;
    return socket;
  }

  close(): void {
    this.ws.terminate();
  }
}

/** Wakes waiters whose condition holds each time something happened (call poke()); fail() rejects them all. */
export class Signal {
  #waiters: Array<{ until: () => boolean; resolve: () => void; reject: (error: Error) => void }> = [];
  #failed: Error | null = null;

  poke(): void {
    if (this.#waiters.length) this.#waiters = this.#waiters.filter((w) => (w.until() ? (w.resolve(), false) : true));
  }

  /** Something went wrong where nobody awaits (a socket handler): every wait, now or later, rejects with it. */
  fail(error: Error): void {
    this.#failed ??= error;
    for (const waiter of this.#waiters.splice(0)) waiter.reject(error);
  }

  wait(until: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (this.#failed) return Promise.reject(this.#failed);
    if (until()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = {
        until,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (error: Error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }
}

// The real relay (node relay/bin.ts) as a child process, and the faults done to it: SIGKILL and restart
// on the same database and port, replacement by an empty relay, a copy of its database taken while it is
// stopped, and a restore from that older copy. Database files are never modified by the campaign: a new
// database is a new file, so a reader may still open the file that was current at any earlier moment.
import { copyFileSync, createWriteStream, existsSync } from 'node:fs';
import { join } from 'node:path';
import { NODE, RELAY_BIN } from './paths.ts';
import { start, type Running } from './procs.ts';

export interface Disruption {
  readonly kind: 'restart' | 'replace' | 'restore' | 'snapshot';
  /** When the relay went down, and when it answered again (Infinity while down). */
  readonly from: number;
  to: number;
}

export class RelayHost {
  readonly dir: string;
  /** The URL tokens must name: the front proxy's, which never changes during a run. */
  readonly audience: string;
  port = 0;
  dbPath: string;
  readonly disruptions: Disruption[] = [];
  /** Every database the relay has used, with the time it became current. */
  readonly databases: { path: string; from: number }[] = [];
  /** The end of stderr of the last start that failed. */
  lastStartError = '';
  #proc: Running | null = null;
  /** Faults on the relay run one after another (two kinds may strike it at once). */
  #queue: Promise<unknown> = Promise.resolve();
  #generation = 1;
  #onPort: (port: number) => void;

  constructor(dir: string, audience: string, onPort: (port: number) => void) {
    this.dir = dir;
    this.audience = audience;
    this.dbPath = join(dir, 'relay-1.db');
    this.databases.push({ path: this.dbPath, from: Date.now() });
    this.#onPort = onPort;
  }

  get running(): boolean {
    return this.#proc !== null;
  }

  /** The database that was current at a moment (for reading what the relay held then). */
  databaseAt(time: number): string {
    let path = this.databases[0]!.path;
    for (const db of this.databases) if (db.from <= time) path = db.path;
    return path;
  }

  #serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(work, work);
    this.#queue = next.catch(() => {});
    return next;
  }

  start(): Promise<void> {
    return this.#serial(() => this.#start());
  }

  async #start(): Promise<void> {
    if (this.#proc) return;
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = attempt === 0 ? this.port : 0; // the same port when it can, else any (the front hides it)
      const result = await this.#spawn(port);
      if (result) {
        this.port = result;
        this.#onPort(result);
        return;
      }
    }
    throw new Error(`the relay did not start on ${this.dbPath}: ${this.lastStartError.trim().split('\n').slice(-3).join(' | ')}`);
  }

  #spawn(port: number): Promise<number | null> {
    const logFile = join(this.dir, 'relay.log');
    let buffered = '';
    const proc = start(NODE, [RELAY_BIN, '--port', String(port), '--db', this.dbPath, '--audience', this.audience, '--log-level', 'warn'], {
      timeoutMs: 24 * 3600_000, // the relay lives for the run; it is stopped explicitly
    });
    proc.child.stderr!.pipe(createWriteStream(logFile, { flags: 'a' }));
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        proc.kill();
        resolve(null);
      }, 20_000);
      proc.child.stdout!.on('data', (chunk: Buffer | string) => {
        buffered += String(chunk);
        const match = /listening on http:\/\/[^:]+:(\d+)/.exec(buffered);
        if (match) {
          clearTimeout(timer);
          this.#proc = proc;
          void proc.done.then(() => {
            if (this.#proc === proc) this.#proc = null;
          });
          resolve(Number(match[1]));
        }
      });
      void proc.done.then((result) => {
        clearTimeout(timer);
        if (this.#proc !== proc) {
          this.lastStartError = result.stderr.slice(-2000);
          resolve(null);
        }
      });
    });
  }

  /** SIGKILL (no clean shutdown). */
  kill(): Promise<void> {
    return this.#serial(() => this.#kill());
  }

  async #kill(): Promise<void> {
    const proc = this.#proc;
    if (!proc) return;
    proc.kill();
    await proc.done;
    this.#proc = null;
  }

  /** SIGTERM: a clean stop (the database is checkpointed and closed). */
  stop(): Promise<void> {
    return this.#serial(() => this.#stop());
  }

  async #stop(): Promise<void> {
    const proc = this.#proc;
    if (!proc) return;
    proc.child.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill(), 10_000);
    await proc.done;
    clearTimeout(timer);
    this.#proc = null;
  }

  /** Down (SIGKILL) for downMs, then up again on the same database and port. */
  killAndRestart(downMs: number): Promise<void> {
    return this.#serial(async () => {
      const disruption: Disruption = { kind: 'restart', from: Date.now(), to: Infinity };
      this.disruptions.push(disruption);
      await this.#kill();
      await new Promise((resolve) => setTimeout(resolve, downMs));
      await this.#start();
      disruption.to = Date.now();
    });
  }

  /** The relay is replaced by an empty one (a new database file) at the same URL. */
  replaceWithEmpty(): Promise<void> {
    return this.#serial(async () => {
      const disruption: Disruption = { kind: 'replace', from: Date.now(), to: Infinity };
      this.disruptions.push(disruption);
      await this.#kill();
      this.#use(join(this.dir, `relay-${++this.#generation}.db`));
      await this.#start();
      disruption.to = Date.now();
    });
  }

  /** Stops the relay cleanly, copies its database, starts it again; returns the copy. */
  takeCopy(): Promise<string> {
    return this.#serial(async () => {
      const disruption: Disruption = { kind: 'snapshot', from: Date.now(), to: Infinity };
      this.disruptions.push(disruption);
      await this.#stop();
      const copy = join(this.dir, `relay-copy-${this.#generation}-${Date.now()}.db`);
      copyDatabase(this.dbPath, copy);
      await this.#start();
      disruption.to = Date.now();
      return copy;
    });
  }

  /** The relay is restored from an older copy of its database (SIGKILL, new file from the copy, start). */
  restore(copy: string): Promise<void> {
    return this.#serial(async () => {
      const disruption: Disruption = { kind: 'restore', from: Date.now(), to: Infinity };
      this.disruptions.push(disruption);
      await this.#kill();
      const path = join(this.dir, `relay-${++this.#generation}.db`);
      copyDatabase(copy, path);
      this.#use(path);
      await this.#start();
      disruption.to = Date.now();
    });
  }

  #use(path: string): void {
    this.dbPath = path;
    this.databases.push({ path, from: Date.now() });
  }
}

/** Copies a SQLite database with its -wal and -shm files (only while no process writes it). */
export function copyDatabase(from: string, to: string): void {
  copyFileSync(from, to);
  for (const suffix of ['-wal', '-shm']) if (existsSync(from + suffix)) copyFileSync(from + suffix, to + suffix);
}

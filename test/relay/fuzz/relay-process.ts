// The relay under fuzz: the real CLI (relay/bin.ts) as a child process on 127.0.0.1, port 0, logging JSON
// at debug level on stderr (kept in full, for the secret checks), and watched for an exit.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';

const BIN = join(import.meta.dirname, '../../../relay/bin.ts');
const START_MS = 20_000;

export class RelayProcess {
  readonly url: string;
  readonly port: number;
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #stderr: string[];
  #exit: string | null = null;

  private constructor(child: ChildProcessWithoutNullStreams, url: string, stderr: string[]) {
    this.#child = child;
    this.url = url;
    this.port = Number(new URL(url).port);
    this.#stderr = stderr;
    child.on('exit', (code, signal) => (this.#exit = `exit code ${code} signal ${signal}`));
  }

  /** Spawns `node relay/bin.ts --port 0 --db dbPath [more args]` and resolves once it prints its URL. */
  static start(dbPath: string, more: string[] = [], logLevel = 'debug'): Promise<RelayProcess> {
    // process.execPath is the Node 24 that runs the tests (the system node may be older).
    const child = spawn(process.execPath, [BIN, '--port', '0', '--db', dbPath, '--log-level', logLevel, ...more], { stdio: 'pipe' });
    const stderr: string[] = [];
    // Always drain stderr: the relay logs synchronously, and a full pipe would stall it.
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk.toString('utf8')));
    return new Promise((resolve, reject) => {
      let out = '';
      const fail = (why: string): void => {
        clearTimeout(timer);
        child.kill('SIGKILL');
        reject(new Error(`the relay did not start: ${why}\n${stderr.join('').slice(-2000)}`));
      };
      const timer = setTimeout(() => fail('no URL within 20 s'), START_MS);
      child.once('exit', (code) => fail(`exited with ${code}`));
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString('utf8');
        const match = /^motebit-relay listening on (http:\/\/127\.0\.0\.1:\d+)\n/.exec(out);
        if (!match) return;
        clearTimeout(timer);
        child.removeAllListeners('exit');
        resolve(new RelayProcess(child, match[1]!, stderr));
      });
    });
  }

  /** null while running; otherwise how it ended. */
  get exited(): string | null {
    return this.#exit ?? (this.#child.exitCode !== null || this.#child.signalCode !== null ? `exit code ${this.#child.exitCode} signal ${this.#child.signalCode}` : null);
  }

  /** Resolves true once the process has ended, or false after `ms`. */
  async exitedWithin(ms: number): Promise<boolean> {
    if (this.exited) return true;
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      this.#child.once('exit', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** Everything the relay wrote on stderr so far. */
  stderr(): string {
    return this.#stderr.join('');
  }

  /** Kills the relay at once (no shutdown of any kind) and resolves once it is gone. */
  async kill(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    this.#child.kill('SIGKILL');
    await gone;
  }

  /** Stops the relay (SIGTERM, then SIGKILL after 7 s) and resolves once it is gone. */
  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    this.#child.kill('SIGTERM');
    const kill = setTimeout(() => this.#child.kill('SIGKILL'), 7000);
    await gone;
    clearTimeout(kill);
  }
}

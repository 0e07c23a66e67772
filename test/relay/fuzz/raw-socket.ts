// A raw TCP session with a hard deadline: the client writes bytes, may wait for an answer, and always
// destroys the socket at the deadline. A relay that keeps a half-open or silent connection is allowed;
// a case that waits forever is not.
import { connect, type Socket } from 'node:net';

export interface SessionResult {
  received: Buffer;
  /** The relay closed (FIN or reset) before the client gave up. */
  closedByRelay: boolean;
  /** The client destroyed the socket at the hard deadline. */
  hitDeadline: boolean;
  error: string | null;
}

export class RawSession {
  readonly #socket: Socket;
  readonly #chunks: Buffer[] = [];
  readonly #deadline: NodeJS.Timeout;
  readonly #wakers = new Set<() => void>();
  #closedByRelay = false;
  #hitDeadline = false;
  #destroyed = false;
  #error: string | null = null;
  #lastData = Date.now();

  private constructor(socket: Socket, deadlineMs: number) {
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#chunks.push(chunk);
      this.#lastData = Date.now();
      this.#wake();
    });
    socket.on('error', (error: NodeJS.ErrnoException) => (this.#error = error.code ?? error.message));
    socket.on('close', () => {
      if (!this.#destroyed) this.#closedByRelay = true;
      this.#wake();
    });
    this.#deadline = setTimeout(() => {
      this.#hitDeadline = true;
      this.destroy();
    }, deadlineMs);
  }

  static open(port: number, deadlineMs: number): Promise<RawSession> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port, noDelay: true });
      socket.once('connect', () => resolve(new RawSession(socket, deadlineMs)));
      socket.once('error', reject);
    });
  }

  get received(): Buffer {
    return Buffer.concat(this.#chunks);
  }

  get done(): boolean {
    return this.#destroyed || this.#closedByRelay || this.#socket.destroyed;
  }

  write(bytes: Buffer): void {
    if (!this.done && this.#socket.writable) this.#socket.write(bytes, () => undefined);
  }

  /** Half-close: the relay sees the end of the request stream. */
  end(): void {
    if (!this.done && this.#socket.writable) this.#socket.end();
  }

  /** Waits until `predicate(received)` holds, the socket is gone, or `ms` pass; says whether it held. */
  async waitFor(predicate: (received: Buffer) => boolean, ms: number): Promise<boolean> {
    const until = Date.now() + ms;
    for (;;) {
      if (predicate(this.received)) return true;
      const left = until - Date.now();
      if (this.done || left <= 0) return false;
      await this.#sleep(left);
    }
  }

  /**
   * Lets the exchange play out: until the relay closes, or `idleMs` pass without data, or the deadline.
   * The socket stays open (if the relay kept it) until destroy() or the deadline.
   */
  async settle(idleMs: number): Promise<SessionResult> {
    while (!this.done) {
      const quiet = Date.now() - this.#lastData;
      if (quiet >= idleMs) break;
      await this.#sleep(idleMs - quiet);
    }
    return { received: this.received, closedByRelay: this.#closedByRelay, hitDeadline: this.#hitDeadline, error: this.#error };
  }

  destroy(): void {
    clearTimeout(this.#deadline);
    if (!this.#destroyed) {
      this.#destroyed = true;
      this.#socket.destroy();
    }
    this.#wake();
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.#wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#wakers.add(wake);
    });
  }

  #wake(): void {
    for (const wake of [...this.#wakers]) wake();
  }
}


// Child processes of the campaign: every one is registered, has a deadline (hitting it is a hang: the
// process is killed and the call reports it), and is killed when the campaign exits, also on Ctrl-C.
import { spawn, type ChildProcess } from 'node:child_process';

export const DEFAULT_TIMEOUT_MS = 90_000;

export interface ProcResult {
  /** Exit code, or null when a signal ended the process. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The deadline passed and the process was killed: a hang. */
  readonly timedOut: boolean;
  /** The campaign killed it on purpose (a fault). */
  readonly killed: boolean;
  readonly startedAt: number;
  readonly endedAt: number;
}

export interface ProcOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly stdin?: string;
  readonly timeoutMs?: number;
  /** Called with each complete line of stderr as it arrives. */
  readonly onStderrLine?: (line: string) => void;
}

/** A running child: its result, and a way to SIGKILL it on purpose. */
export interface Running {
  readonly child: ChildProcess;
  readonly done: Promise<ProcResult>;
  readonly startedAt: number;
  kill(): void;
}

const live = new Set<ChildProcess>();

/** SIGKILLs every child still running (synchronous, safe in an exit handler). */
export function killAllChildren(): void {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  live.clear();
}

export function liveChildren(): number {
  return live.size;
}

export function start(command: string, args: readonly string[], options: ProcOptions = {}): Running {
  const startedAt = Date.now();
  const child = spawn(command, args, { env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
  live.add(child);
  let stdout = '';
  let stderr = '';
  let pendingLine = '';
  let timedOut = false;
  let killed = false;
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
    if (!options.onStderrLine) return;
    pendingLine += chunk;
    const lines = pendingLine.split('\n');
    pendingLine = lines.pop() ?? '';
    for (const line of lines) options.onStderrLine(line);
  });
  child.stdin!.on('error', () => {});
  child.stdin!.end(options.stdin ?? '');
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const done = new Promise<ProcResult>((resolve) => {
    let spawnError: Error | null = null;
    child.on('error', (error) => {
      spawnError = error;
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      live.delete(child);
      if (spawnError) stderr += `\n[spawn error] ${spawnError.message}`;
      resolve({ code, signal, stdout, stderr, timedOut, killed, startedAt, endedAt: Date.now() });
    });
  });
  return {
    child,
    done,
    startedAt,
    kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      killed = true;
      child.kill('SIGKILL');
    },
  };
}

export function run(command: string, args: readonly string[], options: ProcOptions = {}): Promise<ProcResult> {
  return start(command, args, options).done;
}

/** A counting semaphore (FIFO; a request for n slots waits until n are free at once, so no deadlock). */
export class Slots {
  #free: number;
  readonly #waiting: { n: number; resolve: () => void }[] = [];

  constructor(size: number) {
    this.#free = size;
  }

  async acquire(n = 1): Promise<() => void> {
    if (this.#waiting.length === 0 && this.#free >= n) this.#free -= n;
    else await new Promise<void>((resolve) => this.#waiting.push({ n, resolve }));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#free += n;
      this.#drain();
    };
  }

  #drain(): void {
    while (this.#waiting.length > 0 && this.#free >= this.#waiting[0]!.n) {
      const next = this.#waiting.shift()!;
      this.#free -= next.n;
      next.resolve();
    }
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

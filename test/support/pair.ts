// Pairing by approval for tests (docs/keys.md): a new device (a Device, a window's controller, or the real
// CLI in a child process) shows its code; a member answers it; both sides' six digits are compared (they
// must be equal, as the person checks) and the member approves. The waits run concurrently, as on two
// real devices. pollMs is short on the sides the test drives in process.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import type { AppController } from '../../main/app/app-controller.ts';
import { Device, type HomeOptions } from '../../main/app/device.ts';
import { CLI } from './cli.ts';
import { KEYRING } from './devices.ts';

export const POLL_MS = 100;

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((yes, no) => {
    resolve = yes;
    reject = no;
  });
  promise.catch(() => {});
  return { promise, resolve, reject };
}

/** The member answers `code`, checks its digits equal the new device's, and approves. */
async function approveOn(member: Device, code: string, joinerSas: Promise<string>): Promise<{ deviceId: string; sas: string }> {
  const pending = await member.approvalFor(code, { pollMs: POLL_MS });
  const sas = await joinerSas;
  if (sas !== pending.sas) throw new Error(`the digits differ: the new device shows ${sas}, the member ${pending.sas}`);
  await pending.approve();
  return { deviceId: pending.deviceId, sas };
}

/** A new Device (Device.joinByApproval on `options.home`) added to `member`'s motebit by approval. */
export async function joinByApproval(member: Device, options: HomeOptions & { relayUrl?: string; deviceName?: string }): Promise<Device> {
  const code = deferred<string>();
  const sas = deferred<string>();
  const joining = Device.joinByApproval({
    ...options,
    relayUrl: options.relayUrl ?? member.identity.relayUrl!,
    deviceName: options.deviceName,
    pollMs: POLL_MS,
    onCode: (text) => code.resolve(text),
    onOffer: (offered) => sas.resolve(offered.sas),
  });
  joining.catch((error: unknown) => {
    code.reject(error);
    sas.reject(error);
  });
  await approveOn(member, await code.promise, sas.promise);
  return joining;
}

/** A window's controller joins `member`'s motebit by approval through its three join steps. */
export async function controllerJoin(controller: AppController, member: Device, deviceName: string): Promise<void> {
  const { code } = await controller.joinStart(member.identity.relayUrl!, deviceName);
  const digits = controller.joinDigits().then((d) => d.sas);
  await approveOn(member, code, digits);
  await controller.joinFinish();
}

/** The real CLI as a running process: its stdout lines (JSON) one by one, its exit. */
export function startCli(args: string[]) {
  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, MOTEBIT_KEYRING: KEYRING } });
  const lines: string[] = [];
  const waiters: (() => void)[] = [];
  let buffered = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    let at;
    while ((at = buffered.indexOf('\n')) !== -1) {
      lines.push(buffered.slice(0, at));
      buffered = buffered.slice(at + 1);
    }
    for (const wake of waiters.splice(0)) wake();
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let read = 0;
  return {
    child,
    exited,
    stderr: () => stderr,
    /** The next stdout line as JSON, or an error when the CLI exits first. */
    async json<T = Record<string, unknown>>(): Promise<T> {
      for (;;) {
        if (read < lines.length) return JSON.parse(lines[read++]!) as T;
        const woke = new Promise<'line'>((resolve) => waiters.push(() => resolve('line')));
        if ((await Promise.race([woke, exited.then(() => 'exit' as const)])) === 'exit' && read >= lines.length) throw new Error(`the CLI exited before printing a line: ${stderr}`);
      }
    },
  };
}

/** The CLI on `home` joins `member`'s motebit by approval (join --relay URL --json); resolves once it exited 0. */
export async function cliJoin(home: string, member: Device, name: string): Promise<void> {
  const cli = startCli(['--home', home, 'join', '--relay', member.identity.relayUrl!, '--name', name, '--json', '--verbose']);
  try {
    const { join_code: code } = await cli.json<{ join_code: string }>();
    await approveOn(member, code, cli.json<{ sas: string }>().then((line) => line.sas));
    const exit = await cli.exited;
    if (exit !== 0) throw new Error(`the CLI join failed (${exit}): ${cli.stderr()}`);
  } finally {
    cli.child.kill();
  }
}

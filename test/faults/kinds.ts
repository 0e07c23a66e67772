// The fault kinds. A kind either adds operations to the devices' plans (device-level faults: the run's
// executor carries them out), or runs a script beside the workload that strikes the relay or the network
// at random moments (anchored to the workload's progress), or both. Every random choice comes from the
// kind's own fork of the run's PRNG.
import type { DeviceHome } from './devices.ts';
import type { Front } from './front.ts';
import type { Judge } from './judge.ts';
import type { Prng } from './prng.ts';
import { sleep } from './procs.ts';
import type { RelayHost } from './relay-host.ts';
import { TAMPER_VARIANTS } from './tamper.ts';
import { insertOp, type Op, type SkewStep, type Writer } from './workload.ts';

export const KINDS = [
  'relay-kill',
  'device-kill',
  'proxy-cut',
  'proxy-delay',
  'proxy-duplicate',
  'proxy-blackhole',
  'proxy-no-upgrade',
  'relay-replaced',
  'relay-rollback',
  'tamper',
  'clock-skew',
  'concurrent-cli',
] as const;
export type KindName = (typeof KINDS)[number];

export function isKind(name: string): name is KindName {
  return (KINDS as readonly string[]).includes(name);
}

export interface PlanContext {
  readonly prng: Prng;
  readonly devices: readonly DeviceHome[];
  readonly plans: ReadonlyMap<string, Op[]>;
  readonly writers: ReadonlyMap<string, Writer>;
  /** The run's event budget, for sizing big imports. */
  readonly events: number;
}

export interface StrikeContext {
  readonly prng: Prng;
  readonly front: Front;
  readonly relay: RelayHost;
  readonly judge: Judge;
  readonly devices: readonly DeviceHome[];
  /** Resolves once the workload has done this fraction of its operations (or has ended). */
  progress(fraction: number): Promise<void>;
  /** Writes on one device and syncs on every device (in turn, or all at once), for a fault that needs traffic after the workload. */
  traffic(parallel?: boolean): Promise<void>;
  readonly workloadDone: () => boolean;
  note(text: string): void;
  /** Counts one strike of this kind (a fault that really happened). */
  struck(): void;
}

export interface FaultKind {
  readonly name: KindName;
  readonly about: string;
  plan?(ctx: PlanContext): void;
  script?(ctx: StrikeContext): Promise<void>;
}

function onSomeDevice(ctx: PlanContext, make: (device: DeviceHome, writer: Writer) => Op): void {
  const device = ctx.prng.pick(ctx.devices);
  insertOp(ctx.prng, ctx.plans.get(device.name)!, make(device, ctx.writers.get(device.name)!));
}

/** Sorted random fractions of the workload at which strikes happen. */
function moments(prng: Prng, count: number, lo = 0.1, hi = 0.85): number[] {
  return Array.from({ length: count }, () => lo + prng.next() * (hi - lo)).sort((a, b) => a - b);
}

/** Until `until` resolves: nothing while the workload runs, extra writes and syncs once it has ended. */
async function keepBusy(ctx: StrikeContext, until: Promise<unknown>, parallel = false): Promise<void> {
  let over = false;
  void until.finally(() => (over = true));
  while (!over) {
    if (ctx.workloadDone()) await ctx.traffic(parallel);
    else await Promise.race([until, sleep(200)]);
  }
}

/** Holds a front mode for a while (with traffic through it), then the front is honest again. */
async function window(ctx: StrikeContext, mode: Parameters<Front['setMode']>[0], ms: number, exempt: boolean): Promise<void> {
  const close = exempt ? ctx.judge.openWindow(mode.kind === 'blackhole' ? 'blackhole' : mode.kind) : () => {};
  ctx.front.setMode(mode);
  ctx.struck();
  const elapsed = sleep(ms);
  const busy = keepBusy(ctx, elapsed);
  await elapsed;
  if (ctx.front.mode === mode) ctx.front.setMode({ kind: 'pass' }); // unless another kind's window took over
  close();
  await busy;
}

export const FAULT_KINDS: Record<KindName, FaultKind> = {
  'relay-kill': {
    name: 'relay-kill',
    about: 'relay SIGKILLed mid push / mid pull / mid fan-out, restarted on the same database and port',
    async script(ctx) {
      for (const at of moments(ctx.prng, ctx.prng.int(1, 3))) {
        await ctx.progress(at);
        const webSockets = ctx.devices.filter((d) => d.transport !== 'http').length;
        const variant = ctx.prng.pick(webSockets >= 2 ? (['push', 'pull', 'fan-out', 'timer'] as const) : (['push', 'pull', 'timer'] as const));
        let fired = true;
        if (variant === 'timer') await sleep(ctx.prng.int(0, 2_000));
        else {
          const trigger =
            variant === 'push'
              ? { direction: 'up' as const, atLeast: ctx.prng.int(200, 40_000) }
              : variant === 'pull'
                ? { direction: 'down' as const, atLeast: ctx.prng.int(200, 150_000) }
                : { direction: 'down' as const, atLeast: ctx.prng.int(100, 30_000), minWebSockets: 2 };
          const firing = ctx.front.onBytes(trigger, 10_000);
          await keepBusy(ctx, firing, variant === 'fan-out');
          fired = await firing;
        }
        const down = ctx.prng.int(0, 1_500);
        ctx.note(`relay SIGKILL (${variant}${fired ? '' : ', trigger not reached in 10 s'}), down ${down} ms`);
        ctx.struck();
        await ctx.relay.killAndRestart(down);
      }
    },
  },

  'device-kill': {
    name: 'device-kill',
    about: 'a device CLI SIGKILLed mid import / mid push / mid apply',
    plan(ctx) {
      for (let i = ctx.prng.int(1, 3); i > 0; i--) {
        onSomeDevice(ctx, (_device, writer) =>
          ctx.prng.chance(0.35)
            ? { kind: 'kill-import', writes: writer.many(ctx.prng.int(50, Math.max(60, Math.round(ctx.events / 4)))), delayMs: ctx.prng.int(120, 450) }
            : { kind: 'kill-sync', trigger: ctx.prng.pick(['push', 'pull', 'timer'] as const), delayMs: ctx.prng.int(0, 300) },
        );
      }
      // One that cannot miss: a sync killed 100–300 ms after it started (a cycle takes longer than that).
      onSomeDevice(ctx, () => ({ kind: 'kill-sync', trigger: 'timer', delayMs: ctx.prng.int(0, 150) }));
    },
  },

  'proxy-cut': {
    name: 'proxy-cut',
    about: 'connections cut at random byte offsets',
    async script(ctx) {
      for (const at of moments(ctx.prng, ctx.prng.int(1, 2))) {
        await ctx.progress(at);
        const probability = 0.3 + ctx.prng.next() * 0.6;
        const ms = ctx.prng.int(2_000, 8_000);
        ctx.note(`cutting ${Math.round(probability * 100)} % of new connections for ${ms} ms`);
        await window(ctx, { kind: 'cut', probability, maxUp: 30_000, maxDown: 120_000 }, ms, false);
      }
    },
  },

  'proxy-delay': {
    name: 'proxy-delay',
    about: 'every chunk delayed (order kept)',
    async script(ctx) {
      for (const at of moments(ctx.prng, ctx.prng.int(1, 2))) {
        await ctx.progress(at);
        const maxMs = ctx.prng.int(20, 400);
        const ms = ctx.prng.int(2_000, 8_000);
        ctx.note(`delaying chunks up to ${maxMs} ms for ${ms} ms`);
        await window(ctx, { kind: 'delay', maxMs }, ms, false);
      }
    },
  },

  'proxy-duplicate': {
    name: 'proxy-duplicate',
    about: 'a device re-sending: the same sync again at once; POSTs replayed; answers lost after the relay stored',
    plan(ctx) {
      for (let i = ctx.prng.int(1, 3); i > 0; i--) onSomeDevice(ctx, () => ({ kind: 'sync-twice' }));
    },
    async script(ctx) {
      await ctx.progress(moments(ctx.prng, 1)[0]!);
      const replayPosts = ctx.prng.chance(0.6);
      const loseAnswers = ctx.prng.chance(0.7) ? 0.2 + ctx.prng.next() * 0.5 : 0;
      const ms = ctx.prng.int(2_000, 8_000);
      ctx.note(`HTTP proxy for ${ms} ms: POSTs replayed ${replayPosts}, answers lost ${Math.round(loseAnswers * 100)} %`);
      await window(ctx, { kind: 'http', upgrade: 'refuse', replayPosts, loseAnswers }, ms, false);
    },
  },

  'proxy-blackhole': {
    name: 'proxy-blackhole',
    about: 'connections accepted and never answered (devices must time out, not hang)',
    async script(ctx) {
      for (const at of moments(ctx.prng, ctx.prng.int(1, 2))) {
        await ctx.progress(at);
        const ms = ctx.prng.int(300, 3_000);
        ctx.note(`blackhole for ${ms} ms`);
        await window(ctx, { kind: 'blackhole' }, ms, true);
      }
    },
  },

  'proxy-no-upgrade': {
    name: 'proxy-no-upgrade',
    about: 'WebSocket upgrades refused (403 or hang-up), HTTP passed',
    async script(ctx) {
      for (const at of moments(ctx.prng, ctx.prng.int(1, 2))) {
        await ctx.progress(at);
        const upgrade = ctx.prng.pick(['refuse', 'hangup'] as const);
        const ms = ctx.prng.int(2_000, 8_000);
        ctx.note(`WebSocket upgrades ${upgrade === 'refuse' ? 'refused with 403' : 'hung up'} for ${ms} ms`);
        await window(ctx, { kind: 'http', upgrade }, ms, false);
      }
    },
  },

  'relay-replaced': {
    name: 'relay-replaced',
    about: 'the relay replaced by an EMPTY one (new database) at the same URL',
    async script(ctx) {
      await ctx.progress(moments(ctx.prng, 1, 0.2, 0.8)[0]!);
      ctx.note('relay replaced by an empty one');
      ctx.struck();
      await ctx.relay.replaceWithEmpty();
    },
  },

  'relay-rollback': {
    name: 'relay-rollback',
    about: 'the relay restored from an OLDER copy of its database at the same URL',
    async script(ctx) {
      const [copyAt, restoreAt] = [ctx.prng.next() * 0.35 + 0.1, ctx.prng.next() * 0.35 + 0.5];
      await ctx.progress(copyAt);
      const copy = await ctx.relay.takeCopy();
      ctx.note('relay database copied (relay stopped for it)');
      await ctx.progress(restoreAt);
      if (ctx.workloadDone()) await ctx.traffic(); // something the copy does not have
      ctx.note('relay restored from the older copy');
      ctx.struck();
      await ctx.relay.restore(copy);
    },
  },

  tamper: {
    name: 'tamper',
    about: 'ONE pull page tampered (bit flip / swap / drop / inject) by an HTTP proxy, then honest',
    async script(ctx) {
      for (const at of moments(ctx.prng, ctx.prng.int(1, 2), 0.15, 0.7)) {
        await ctx.progress(at);
        const variant = ctx.prng.pick(TAMPER_VARIANTS);
        // Refusing upgrades moves the auto devices to HTTP (more pullers), but WebSocket-only devices can
        // then write nothing: refuse only when at least two devices can still pull and push over HTTP.
        const overHttp = ctx.devices.filter((d) => d.transport !== 'websocket').length;
        const upgrade = overHttp >= 2 && ctx.prng.chance(0.6) ? 'refuse' : 'tunnel';
        ctx.note(`serving one ${variant}-tampered pull page (WebSocket upgrades ${upgrade === 'refuse' ? 'refused' : 'tunnelled'})`);
        const pending = ctx.front.tamperOnce(variant, upgrade, 30_000);
        let record = await Promise.race([pending, sleep(8_000).then(() => undefined)]);
        while (record === undefined) {
          await ctx.traffic(); // make sure some device pulls a page big enough
          record = await Promise.race([pending, sleep(3_000).then(() => undefined)]);
        }
        if (record) {
          ctx.struck();
          ctx.note(`tampered a pull page: ${record.detail}`);
        } else ctx.note(`tamper (${variant}) found no pull page to alter in 30 s`);
      }
    },
  },

  'clock-skew': {
    name: 'clock-skew',
    about: 'a device clock off (libfaketime): within the relay tolerance (must sync) and beyond it (must fail with exit 4)',
    plan(ctx) {
      const steps = (writer: Writer): SkewStep[] =>
        Array.from({ length: ctx.prng.int(1, 2) }, (): SkewStep[] => [{ kind: 'put', write: writer.next() }, { kind: 'sync' }]).flat();
      onSomeDevice(ctx, (_device, writer) => ({ kind: 'skew', seconds: ctx.prng.pick([-1, 1]) * ctx.prng.int(5, 20), beyond: false, steps: steps(writer) }));
      onSomeDevice(ctx, (_device, writer) => {
        const seconds = ctx.prng.chance(0.5) ? ctx.prng.int(45, 200) : -ctx.prng.int(400, 900);
        return { kind: 'skew', seconds, beyond: true, steps: steps(writer) };
      });
    },
  },

  'concurrent-cli': {
    name: 'concurrent-cli',
    about: 'two CLI processes on one home at once (sync with put / import / sync)',
    plan(ctx) {
      for (let i = ctx.prng.int(1, 3); i > 0; i--) {
        onSomeDevice(ctx, (_device, writer) => {
          const other = ctx.prng.pick(['put', 'import', 'sync'] as const);
          return { kind: 'concurrent', other, writes: other === 'put' ? [writer.next()] : other === 'import' ? writer.many(ctx.prng.int(20, 200)) : [] };
        });
      }
    },
  },
};

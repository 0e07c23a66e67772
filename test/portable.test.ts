// shared/portable/ is what any runtime may import (issue 15, item 5): the window (no Node), a worker,
// Node. This test bundles all of it for the browser with Vite, refusing any import but zod and its own
// modules, then runs the bundle in a bare JavaScript realm (node:vm: no Buffer, no process, no require, no
// URL) and uses what it exports there. A portable module that imported node:crypto fails the bundle; one that
// reached for Buffer or process fails when its code runs in the realm. isCanonicalBase64Url (which replaced a
// Buffer round trip) is checked against that round trip, property-tested.
import { readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';
import fc from 'fast-check';
import { build, type Rollup } from 'vite';
import { describe, expect, it } from 'vitest';
import { isCanonicalBase64Url } from '../shared/portable/base64url.ts';
import { assertProperty, propertyPlan } from './support/property.ts';

const PORTABLE = resolve(dirname(fileURLToPath(import.meta.url)), '../shared/portable');
const MODULES = readdirSync(PORTABLE).filter((name) => name.endsWith('.ts')).sort();
const ENTRY = 'virtual:portable';
/** The name a module's exports go under in the bundle: base64url.ts -> base64url, relay-api.ts -> relayApi. */
const exportName = (file: string): string => file.slice(0, -3).replace(/-(.)/g, (_, c: string) => c.toUpperCase());
const ENTRY_ID = '\0virtual:portable';

/** The bundle (an IIFE assigning `portable`), or the reason Vite refused it. */
async function bundlePortable(): Promise<string> {
  const entry = MODULES.map((name) => `export * as ${exportName(name)} from ${JSON.stringify(join(PORTABLE, name))};`).join('\n');
  const result = await build({
    configFile: false,
    logLevel: 'silent',
    plugins: [
      {
        name: 'portable-only',
        enforce: 'pre',
        resolveId(source, importer) {
          if (source.endsWith(ENTRY)) return ENTRY_ID;
          if (source === 'zod' || source.startsWith('zod/')) return null; // zod resolves as usual
          const path = importer === ENTRY_ID ? source : resolve(dirname(importer ?? PORTABLE), source);
          if (!importer?.includes('/node_modules/zod/') && !(path.startsWith(`${PORTABLE}/`) && !path.slice(PORTABLE.length + 1).includes('/'))) {
            throw new Error(`${importer ?? 'the entry'} imports ${source}: shared/portable/ may import only zod and its own modules`);
          }
          return null;
        },
        load: (id) => (id === ENTRY_ID ? entry : null),
      },
    ],
    build: {
      write: false,
      minify: false,
      target: 'es2022',
      lib: { entry: ENTRY, formats: ['iife'], name: 'portable', fileName: () => 'portable.js' },
    },
  });
  const outputs = (Array.isArray(result) ? result : [result]) as Rollup.RollupOutput[];
  const chunk = outputs.flatMap((output) => output.output).find((file): file is Rollup.OutputChunk => file.type === 'chunk');
  if (!chunk) throw new Error('Vite produced no bundle');
  return chunk.code;
}

const EVENT = {
  v: 1,
  motebit_id: `mb_${'A'.repeat(22)}`,
  device_id: `dv_${'B'.repeat(22)}`,
  event_id: '0b7e2c1a-5d3f-4a6b-9c8d-7e6f5a4b3c2d',
  device_seq: 1,
  prev: '0'.repeat(64),
  clock: { l: 1, v: { [`dv_${'B'.repeat(22)}`]: 1 } },
  entity: 'memory/1',
  op: 'set',
  payload: { text: 'hello', tags: ['a', 'b'] },
  ts: 1,
};

describe('shared/portable runs in any runtime', () => {
  it('bundles for the browser with nothing but zod, and works in a realm without Node', { timeout: 60_000 }, async () => {
    const code = await bundlePortable();
    const realm = vm.createContext({});
    expect(vm.runInContext('[typeof Buffer, typeof process, typeof require, typeof URL]', realm)).toEqual(['undefined', 'undefined', 'undefined', 'undefined']);
    vm.runInContext(code, realm);
    // Each module is there; calls below run its code inside the realm.
    const run = <T>(source: string): T => vm.runInContext(`(() => { const p = portable; ${source} })()`, realm) as T;
    expect(run<string[]>('return Object.keys(p).sort()')).toEqual(MODULES.map(exportName).sort());

    const event = JSON.stringify(EVENT);
    expect(run<boolean>(`return p.event.SealedEventSchema.safeParse(${event}).success`)).toBe(true);
    expect(run<string>(`const r = p.event.SealedEventSchema.safeParse({ ...${event}, op: 'delete' }); return r.error.issues[0].message`)).toBe('a delete carries a null payload');
    expect(run<boolean>(`return p.ids.DeviceIdSchema.safeParse('dv_x').success`)).toBe(false);
    expect(run<boolean>(`return p.wire.WireEventSchema.safeParse({ event_id: ${JSON.stringify(EVENT.event_id)}, device_id: ${JSON.stringify(EVENT.device_id)}, device_seq: 1, key_id: null, body: 'QQ' }).success`)).toBe(true);
    expect(run<boolean[]>(`return ['QQ', 'QR', ''].map((data) => p.relayApi.SnapshotChunkSchema.safeParse({ data }).success)`)).toEqual([true, false, true]);
    expect(run<boolean>(`return p.ipcContract.IPC_CONTRACT['settings.setInterval'].input.safeParse({ seconds: p.limits.MIN_INTERVAL_SECONDS - 1 }).success`)).toBe(false);
    expect(run<number>('return p.jsonBounds.jsonTextDepth(\'[[{"a":"]]]"}]]\', 10)')).toBe(3);
    expect(run<string>(`return p.words.sentence('the relay is down')`)).toBe('The relay is down.');
    expect(run<boolean>(`return p.status.SyncStatusSchema.safeParse({}).success`)).toBe(false);
  });

  it('isCanonicalBase64Url says what a Buffer round trip says', () => {
    const plan = propertyPlan('canonical base64url', 2000);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const text = fc.oneof(
      fc.array(fc.constantFrom(...alphabet), { maxLength: 12 }).map((chars) => chars.join('')),
      fc.uint8Array({ maxLength: 12 }).map((bytes) => Buffer.from(bytes).toString('base64url')),
      fc.string({ maxLength: 8 }),
    );
    const byBuffer = (value: string): boolean => /^[A-Za-z0-9_-]*$/.test(value) && Buffer.from(value, 'base64url').toString('base64url') === value;
    assertProperty(fc.property(text, (value) => isCanonicalBase64Url(value) === byBuffer(value)), plan);
    // The cases that matter, named: unused bits set, a dangling character, padding, another alphabet.
    expect(['QQ', 'QR', 'QUE', 'QUF', 'Q', 'QQ==', 'Q+8', 'AAAA'].map(isCanonicalBase64Url)).toEqual([true, false, true, false, false, false, false, true]);
  });
});

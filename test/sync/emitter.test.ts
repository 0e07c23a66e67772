// One listener policy (shared/emitter.ts): a listener that throws is reported and skipped, the others
// still hear, and the emitter's caller is never broken — so syncNow never rejects because a window or a
// tray listener failed.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Emitter } from '../../shared/emitter.ts';
import { Lab } from '../support/devices.ts';

describe('Emitter', () => {
  it('tells every listener in order; a throwing one is reported and the rest still hear', () => {
    const reported: unknown[] = [];
    const emitter = new Emitter<number>((error) => reported.push(error));
    const heard: string[] = [];
    emitter.on((n) => heard.push(`a${n}`));
    emitter.on(() => {
      throw new Error('listener broke');
    });
    const stop = emitter.on((n) => heard.push(`c${n}`));
    expect(() => emitter.emit(1)).not.toThrow();
    stop();
    emitter.emit(2);
    expect(heard).toEqual(['a1', 'c1', 'a2']);
    expect(reported.map((e) => (e as Error).message)).toEqual(['listener broke', 'listener broke']);
    expect(emitter.size).toBe(2);
  });

  it('survives a reporter that throws too', () => {
    const emitter = new Emitter<void>(() => {
      throw new Error('reporter broke');
    });
    emitter.on(() => {
      throw new Error('listener broke');
    });
    expect(() => emitter.emit()).not.toThrow();
  });
});

describe('the engine with a listener that throws', () => {
  let lab: Lab;
  beforeEach(() => void (lab = new Lab()));
  afterEach(() => lab.close());

  it('syncNow still resolves with a successful cycle, and the other listeners still hear', async () => {
    const relay = await lab.relay();
    const device = await lab.create(relay.url, { name: 'a' });
    device.engine.onStatus(() => {
      throw new Error('a window that went away');
    });
    device.engine.onCycle(() => {
      throw new Error('a tray that went away');
    });
    const cycles: boolean[] = [];
    device.engine.onCycle((cycle) => cycles.push(cycle.ok));
    device.put('memory/1', 'hello');
    const result = await device.syncNow();
    expect(result.ok).toBe(true);
    expect(result.pushed).toBe(1);
    expect(cycles).toEqual([true]);
  });
});

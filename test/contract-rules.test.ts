// Rules of the relay protocol's schemas and of the words a person reads, each at its edges (the contract
// area of `npm run mutate`): a version vector names between its minimum and MAX_COVERS_WRITERS writers, each
// by its device id; a message becomes one sentence, whatever punctuation it already ends with.
import { describe, expect, it } from 'vitest';
import { AckCoversSchema, MAX_COVERS_WRITERS, SnapshotCoversSchema } from '../shared/portable/relay-api.ts';
import { sentence } from '../shared/portable/words.ts';

const deviceId = (i: number) => `dv_${i.toString(36).padStart(22, 'A')}`;
const covers = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [deviceId(i), i + 1]));
const messages = (result: { success: boolean; error?: { issues: { message: string }[] } }) => (result.success ? [] : result.error!.issues.map((issue) => issue.message));

describe('a version vector (covers)', () => {
  it('names 1 (a snapshot) or 0 (an acknowledgement) to MAX_COVERS_WRITERS writers, and says so past either end', () => {
    expect(messages(SnapshotCoversSchema.safeParse(covers(0)))).toEqual([`covers names 1 to ${MAX_COVERS_WRITERS} writers`]);
    expect(SnapshotCoversSchema.safeParse(covers(1)).success).toBe(true);
    expect(SnapshotCoversSchema.safeParse(covers(MAX_COVERS_WRITERS)).success).toBe(true);
    expect(messages(SnapshotCoversSchema.safeParse(covers(MAX_COVERS_WRITERS + 1)))).toEqual([`covers names 1 to ${MAX_COVERS_WRITERS} writers`]);
    expect(AckCoversSchema.safeParse(covers(0)).success).toBe(true);
    expect(messages(AckCoversSchema.safeParse(covers(MAX_COVERS_WRITERS + 1)))).toEqual([`covers names 0 to ${MAX_COVERS_WRITERS} writers`]);
  });

  it('names each writer by its device id, and says so', () => {
    expect(messages(SnapshotCoversSchema.safeParse({ 'not a device': 3 }))).toEqual(['covers names each writer by its device id (dv_ followed by 22 base64url characters)']);
    // A bad number under a good id is not told it is a bad id.
    const zero = messages(SnapshotCoversSchema.safeParse({ [deviceId(7)]: 0 }));
    expect(zero).toHaveLength(1);
    expect(zero[0]).not.toMatch(/device id/);
    // Nor is something that is not a map at all.
    const notMap = messages(SnapshotCoversSchema.safeParse([1, 2]));
    expect(notMap).toHaveLength(1);
    expect(notMap[0]).not.toMatch(/device id/);
  });
});

describe('sentence', () => {
  it('capitalises a clause and ends it with one full stop, keeping the punctuation it has', () => {
    expect(sentence('the relay is down')).toBe('The relay is down.');
    expect(sentence('  the relay is down  ')).toBe('The relay is down.');
    expect(sentence('')).toBe('');
    expect(sentence('   ')).toBe('');
    for (const done of ['Saved.', 'Really?', 'Stop!', 'Wait…', 'it said "no."', "it said 'yes!'", 'it said “no.”', '(see the log.)', '[done.]']) {
      expect(sentence(done)).toBe(done[0]!.toUpperCase() + done.slice(1));
    }
    // Punctuation inside, not at the end, does not count; closing marks without a stop before them do not either.
    expect(sentence('version 1.2 is out')).toBe('Version 1.2 is out.');
    expect(sentence('it said "no"')).toBe('It said "no".');
    expect(sentence('done. then more')).toBe('Done. then more.');
  });
});

// The CLI's text output of conflicts: values written by another device reach the terminal without the
// control characters JSON leaves in (C1 controls such as CSI, bidi overrides), whatever they hold.
import { describe, expect, it } from 'vitest';
import { conflictsText } from '../cli/format.ts';

const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

describe('conflicts as text', () => {
  it('shows values without terminal control characters', () => {
    const side = (value: string, eventId: string) => ({ eventId, deviceId: 'dv_AAAAAAAAAAAAAAAAAAAAAA', kept: true, op: 'set' as const, value: { text: value }, writtenAt: 0 });
    const text = conflictsText([
      {
        id: 1,
        entity: 'memory/\u001b[2Jx',
        winner: side('clear \u009b2J screen', 'e1'),
        loser: side('\u202eevil', 'e2'),
        currentEventId: 'e1',
        detectedAt: 0,
        reviewedAt: null,
        resolvedBy: null,
        winReason: 'clock',
      },
    ]);
    expect(text).not.toMatch(CONTROL);
    expect(text).toContain('screen');
    expect(text).toContain('evil');
  });

  it('says a side is no longer kept (a settled conflict of a deleted entity after pruning), with no time or value', () => {
    const gone = (eventId: string) => ({ eventId, deviceId: 'dv_AAAAAAAAAAAAAAAAAAAAAA', kept: false, op: null, value: null, writtenAt: null });
    const text = conflictsText([{ id: 2, entity: 'memory/deleted', winner: gone('e1'), loser: gone('e2'), currentEventId: 'e3', detectedAt: 0, reviewedAt: null, resolvedBy: 'e3', winReason: 'clock' }]);
    expect(text.split('\n').filter((line) => /no longer kept \(the entity was deleted and its old history dropped\)/.test(line))).toHaveLength(2);
    expect(text).not.toMatch(/1970|null/);
  });
});

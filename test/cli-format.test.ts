// The CLI's text output of conflicts: values written by another device reach the terminal without the
// control characters JSON leaves in (C1 controls such as CSI, bidi overrides), whatever they hold.
import { describe, expect, it } from 'vitest';
import { conflictsText } from '../cli/format.ts';

const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

describe('conflicts as text', () => {
  it('shows values without terminal control characters', () => {
    const side = (value: string, eventId: string) => ({ eventId, deviceId: 'dv_AAAAAAAAAAAAAAAAAAAAAA', op: 'set' as const, value: { text: value }, writtenAt: 0 });
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
});

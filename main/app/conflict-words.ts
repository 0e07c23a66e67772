// How a conflict's winner is explained to people, in the window and in the CLI alike (one wording).
import type { WinReason } from '../store/event-store.ts';

/** Why the pair's winner wins, in words: the reason comes from the one total order (store winReason). */
export function winReasonWords(reason: WinReason): string {
  return reason === 'clock'
    ? 'Wins because it was written later by clock (its device had seen more changes).'
    : 'Same clock: device order decides (every device picks the same one).';
}

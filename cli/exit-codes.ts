// Exit codes of motebit-sync (documented in README and `motebit-sync help`): scripts can tell a typo from
// a dead network from a revoked device.
import type { SyncErrorKind } from '../shared/portable/status.ts';

export const EXIT = {
  ok: 0,
  /** Something local: config, keyring, store, disk. */
  failure: 1,
  /** The command line was wrong. */
  usage: 2,
  /** The relay could not be reached. */
  network: 3,
  /** The relay refused this device (revoked, unknown, clock skew). */
  auth: 4,
  /** The relay refused events, answered oddly, or served events that failed verification. */
  relay: 5,
} as const;

export function exitCodeFor(kind: SyncErrorKind): number {
  switch (kind) {
    case 'network':
      return EXIT.network;
    case 'auth':
      return EXIT.auth;
    case 'relay':
    case 'integrity':
      return EXIT.relay;
    case 'local':
      return EXIT.failure;
  }
}

// How quarantined events read, for the CLI and the tray menu. Plain words, no codes. (A repair of the
// relay comes with its sentence in the status: lastRecovery.message, made in main/sync/relay-audit.ts.)
const count = (n: number, noun: string): string => `${n.toLocaleString('en-US')} ${noun}${n === 1 ? '' : 's'}`;

/** "2 received events set aside (kept failing verification)", or null when there is none. */
export function quarantineText(quarantined: number): string | null {
  if (quarantined <= 0) return null;
  return `${count(quarantined, 'received event')} set aside (kept failing verification)`;
}

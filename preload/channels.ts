// The contract's channel and event names, as literals. The sandboxed preload is bundled into one small
// file and must not pull zod (or the schemas) in, so it cannot import the runtime values of
// shared/portable/ipc-contract.ts; the types below make a missing or extra name a compile error, and
// test/electron-logic.test.ts checks both lists against CHANNELS and EVENT_NAMES.
import type { Channel, EventName } from '../shared/portable/ipc-contract.ts';

type Exactly<List extends readonly string[], Union extends string> = [Union] extends [List[number]] ? ([List[number]] extends [Union] ? List : never) : never;

const channels = [
  'app.state',
  'setup.create',
  'setup.join',
  'setup.joinStart',
  'setup.joinDigits',
  'setup.joinFinish',
  'setup.cancel',
  'recovery.take',
  'setup.recover',
  'app.environment',
  'secrets.retry',
  'secrets.useFile',
  'status.get',
  'sync.now',
  'sync.pause',
  'sync.resume',
  'conflicts.list',
  'conflicts.markReviewed',
  'conflicts.keep',
  'conflicts.counts',
  'conflicts.keepMany',
  'settings.get',
  'settings.setRelayUrl',
  'settings.moveRelay',
  'relay.moveOffer',
  'relay.dismissMove',
  'settings.setInterval',
  'settings.setStartAtLogin',
  'devices.list',
  'devices.revoke',
  'pairing.create',
  'pairing.check',
  'pairing.approve',
  'pairing.decline',
  'keys.upgrade',
  'keys.upgradeWaiting',
  'keys.upgradeDigits',
  'keys.upgradeFinish',
  'keys.upgradeCancel',
  'snapshot.info',
  'snapshot.make',
  'snapshot.prune',
] as const;
const events = ['status.changed', 'app.changed'] as const;

export const PRELOAD_CHANNELS: Exactly<typeof channels, Channel> = channels;
export const PRELOAD_EVENTS: Exactly<typeof events, EventName> = events;

/** Same as ipcChannelName / IPC_EVENT_CHANNEL in the contract (checked by the tests). */
export const invokeChannel = (channel: Channel): string => `motebit:${channel}`;
export const EVENT_CHANNEL = 'motebit:event';

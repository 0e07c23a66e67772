// The core that `npm run mutate` mutation-tests (issue 15), cut into areas. Each area is one Stryker run in
// incremental mode whose results are kept in mutation/<area>.json (committed): a later run of the area
// re-tests only the mutants whose code or covering tests changed, and `npm run mutate -- --score` adds the
// areas up into the core's score. The whole core is some 6,000 mutants, many hours on 2 cores; an area fits
// in one sitting. Every file of CORE is in exactly one area (scripts/mutate.ts checks).

/** What is mutated: the shared rules, the device's store and sync engine, and the relay's authentication. */
export const CORE = ['shared/**/*.ts', '!shared/portable/ipc-contract.ts', 'main/store/**/*.ts', 'main/sync/**/*.ts', 'relay/auth.ts'];

/** @type {Record<string, { files: string[]; what: string }>} */
export const AREAS = {
  order: { files: ['shared/clock.ts'], what: 'the total order, happened-before and concurrency (the winner and conflict rules read these)' },
  chain: { files: ['shared/chain.ts'], what: 'hash chains: a device\'s events verified in order, forks and gaps found' },
  event: { files: ['shared/event.ts', 'shared/ids.ts', 'shared/encoding.ts', 'shared/portable/event.ts', 'shared/portable/ids.ts', 'shared/portable/base64url.ts', 'shared/portable/json-bounds.ts'], what: 'what an event is, its hash and seal, ids, encodings, JSON bounds' },
  crypto: { files: ['shared/crypto.ts', 'shared/envelope-crypto.ts', 'shared/checksum.ts', 'shared/code-text.ts', 'shared/token.ts', 'shared/ack.ts', 'shared/audience.ts'], what: 'signatures, end-to-end encryption, tokens, acknowledgements, typed codes' },
  contract: { files: ['shared/portable/wire.ts', 'shared/portable/relay-api.ts', 'shared/portable/status.ts', 'shared/portable/limits.ts', 'shared/portable/words.ts', 'shared/emitter.ts'], what: 'the relay protocol\'s schemas, status, limits, words, the emitter' },
  membership: { files: ['shared/membership/*.ts'], what: 'the signed membership log, epochs and content keys, pairing codes' },
  snapshot: { files: ['shared/snapshot/*.ts', 'main/store/snapshot-keeper.ts'], what: 'snapshots: content, seal, blob, the retention rule, pruning' },
  'event-store': { files: ['main/store/event-store.ts'], what: 'the device store: apply, winners, conflicts, digests' },
  'store-rest': { files: ['main/store/database.ts', 'main/store/migrations.ts', 'main/store/membership-ledger.ts', 'main/store/relay-ledger.ts'], what: 'the database, migrations, the membership and relay ledgers' },
  engine: { files: ['main/sync/engine.ts', 'main/sync/relay-audit.ts'], what: 'the sync cycle and the relay audit (lost, rolled back, withheld)' },
  transports: { files: ['main/sync/transport.ts', 'main/sync/ws-transport.ts', 'main/sync/ws-state.ts', 'main/sync/http-transport.ts', 'main/sync/encrypted-transport.ts', 'main/sync/codec.ts', 'main/sync/relay-client.ts'], what: 'WebSocket and HTTP transports, encryption, the relay client' },
  'sync-rest': { files: ['main/sync/membership-sync.ts', 'main/sync/member-keyring.ts', 'main/sync/snapshot-sync.ts'], what: 'membership, member keys and snapshot sync' },
  auth: { files: ['relay/auth.ts'], what: 'the relay\'s token and request authentication' },
};

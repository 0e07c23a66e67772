// The core that `npm run mutate` mutation-tests (issue 15), cut into areas. Each area is one Stryker run in
// incremental mode whose results are kept in mutation/<area>.json (committed): a later run of the area
// re-tests only the mutants whose code or covering tests changed, and `npm run mutate -- --score` adds the
// areas up into the core's score. The whole core is some 6,000 mutants, many hours on 2 cores; an area fits
// in one sitting. Every file of CORE is in exactly one area, or cut by lines (`path:FROM-TO`) into areas
// that together cover it once (scripts/mutate.ts checks).

/**
 * The suites of the sync engine's areas (the snapshot suites too: a new device joins from a snapshot in the cycle). Not engine-crash.test.ts: its device is the CLI in a child process,
 * which the mutants of this process do not reach, and it costs 19 s for every mutant it covers.
 */
const ENGINE_TESTS = ['test/sync/engine-behaviour.test.ts', 'test/sync/engine-convergence.test.ts', 'test/sync/engine-cursor.test.ts', 'test/sync/engine-fallback.test.ts', 'test/sync/relay-recovery.test.ts', 'test/sync/relay-audit.test.ts', 'test/sync/push-window.test.ts', 'test/sync/progress.test.ts', 'test/sync/upgrade.test.ts', 'test/relay/quotas.test.ts', 'test/sync/snapshots.test.ts', 'test/sync/snapshot-resume.test.ts', 'test/sync/engine-audit-rules.test.ts', 'test/sync/engine-flow-receive.test.ts', 'test/sync/engine-flow-transport.test.ts'];

/**
 * Suites that drive the relay client's other calls (membership, pairing, snapshots, devices, quotas) against
 * a real relay. Not test/relay/cli.test.ts: its clients are child processes.
 */
const RELAY_CLIENT_TESTS = ['test/relay/auth.test.ts', 'test/relay/input.test.ts', 'test/relay/membership.test.ts', 'test/relay/pairing.test.ts', 'test/relay/pipelining.test.ts', 'test/relay/quotas.test.ts', 'test/relay/routes.test.ts', 'test/relay/snapshots.test.ts', 'test/relay/sync.test.ts', 'test/relay/ws-fanout.test.ts', 'test/relay/ws.test.ts', 'test/identity/pairing-flow.test.ts', 'test/sync/membership-sync.test.ts', 'test/sync/relay-recovery.test.ts', 'test/words.test.ts'];

/** What is mutated: the shared rules, the device's store and sync engine, and the relay's authentication. */
export const CORE = ['shared/**/*.ts', '!shared/portable/ipc-contract.ts', 'main/store/**/*.ts', 'main/sync/**/*.ts', 'relay/auth.ts'];

/**
 * `tests`: the suites that claim the area's behaviours (they import its modules or are its property tests);
 * its mutants run against those only, so a mutant only the whole suite would catch counts as a survivor.
 * Without it, against every suite vitest.mutate.config.ts includes (order and auth ran that way):
 * a mutant in a module every test reaches then runs the whole suite, 5-6 minutes here, when it survives.
 * @type {Record<string, { files: string[]; what: string; tests?: string[] }>}
 */
export const AREAS = {
  order: { files: ['shared/clock.ts'], what: 'the total order, happened-before and concurrency (the winner and conflict rules read these)' },
  chain: { files: ['shared/chain.ts'], what: 'hash chains: a device\'s events verified in order, forks and gaps found', tests: ['test/tamper.test.ts', 'test/store.test.ts', 'test/crash.test.ts', 'test/convergence.property.test.ts', 'test/sequential.property.test.ts', 'test/snapshot.test.ts', 'test/snapshot.property.test.ts', 'test/sync/relay-recovery.test.ts', 'test/sync/upgrade.test.ts', 'test/sync/engine-convergence.test.ts'] },
  event: { files: ['shared/event.ts', 'shared/ids.ts', 'shared/encoding.ts', 'shared/portable/event.ts', 'shared/portable/ids.ts', 'shared/portable/base64url.ts', 'shared/portable/json-bounds.ts'], what: 'what an event is, its hash and seal, ids, encodings, JSON bounds', tests: ['test/event-vectors.test.ts', 'test/tamper.test.ts', 'test/event-payload.property.test.ts', 'test/json-bounds.property.test.ts', 'test/portable.test.ts', 'test/store.test.ts', 'test/sequential.property.test.ts', 'test/identity/local-identity.test.ts', 'test/identity/master-token.test.ts', 'test/relay/input.test.ts', 'test/relay/auth.test.ts'] },
  crypto: { files: ['shared/crypto.ts', 'shared/envelope-crypto.ts', 'shared/checksum.ts', 'shared/code-text.ts', 'shared/token.ts', 'shared/ack.ts', 'shared/audience.ts'], what: 'signatures, end-to-end encryption, tokens, acknowledgements, typed codes', tests: ['test/crypto-rules.test.ts', 'test/ed25519-reference.test.ts', 'test/tamper.test.ts', 'test/snapshot.test.ts', 'test/words.test.ts', 'test/relay/auth.test.ts', 'test/relay/auth-rules.test.ts', 'test/relay/snapshots.test.ts', 'test/sync/encrypted-transport.test.ts', 'test/sync/body-key-cache.test.ts', 'test/identity/master-token.test.ts', 'test/identity/recovery-key.test.ts', 'test/identity/pairing-code.test.ts'] },
  contract: { files: ['shared/portable/wire.ts', 'shared/portable/relay-api.ts', 'shared/portable/status.ts', 'shared/portable/limits.ts', 'shared/portable/words.ts', 'shared/emitter.ts'], what: 'the relay protocol\'s schemas, status, limits, words, the emitter', tests: ['test/contract-rules.test.ts', 'test/relay/input.test.ts', 'test/relay/routes.test.ts', 'test/relay/ws.test.ts', 'test/relay/sync.test.ts', 'test/sync/relay-client.test.ts', 'test/sync/emitter.test.ts', 'test/sync/ws-state.test.ts', 'test/sync/http-transport.test.ts', 'test/sync/progress.test.ts', 'test/words.test.ts', 'test/cli-words.test.ts', 'test/ipc-contract.test.ts', 'test/portable.test.ts', 'test/electron-logic.test.ts'] },
  membership: { files: ['shared/membership/*.ts'], what: 'the signed membership log, epochs and content keys, pairing codes', tests: ['test/identity/membership.test.ts', 'test/identity/membership.property.test.ts', 'test/identity/pairing-code.test.ts', 'test/identity/pairing-flow.test.ts', 'test/identity/pairing.test.ts', 'test/relay/membership.test.ts', 'test/relay/pairing.test.ts', 'test/sync/membership-sync.test.ts', 'test/sync/member-keys.test.ts', 'test/app-controller-keys.test.ts'] },
  snapshot: { files: ['shared/snapshot/*.ts', 'main/store/snapshot-keeper.ts'], what: 'snapshots: content, seal, blob, the retention rule, pruning', tests: ['test/snapshot.test.ts', 'test/snapshot-blob.test.ts', 'test/event-store-rules.test.ts', 'test/snapshot.property.test.ts', 'test/sync/snapshots.test.ts', 'test/sync/snapshot-resume.test.ts', 'test/relay/snapshots.test.ts', 'test/app-controller-snapshots.test.ts', 'test/cli-snapshot.test.ts'] },
  'event-store': { files: ['main/store/event-store.ts'], what: 'the device store: apply, winners, conflicts, digests', tests: ['test/store.test.ts', 'test/event-store-rules.test.ts', 'test/conflict-queries.test.ts', 'test/convergence.property.test.ts', 'test/sequential.property.test.ts', 'test/crash.test.ts', 'test/tamper.test.ts', 'test/snapshot.test.ts', 'test/store-settings.test.ts', 'test/sync/engine-cursor.test.ts'] },
  'store-rest': { files: ['main/store/database.ts', 'main/store/migrations.ts', 'main/store/membership-ledger.ts', 'main/store/relay-ledger.ts'], what: 'the database, migrations, the membership and relay ledgers', tests: ['test/store-ledgers.test.ts', 'test/store.test.ts', 'test/store-settings.test.ts', 'test/crash.test.ts', 'test/sync/engine-cursor.test.ts', 'test/sync/membership-sync.test.ts', 'test/sync/relay-recovery.test.ts'] },
  // The sync engine is cut by lines (engine.ts's mutants run its suites with real relays: some 35 s each on one
  // runner, 8 hours for the whole file): each part fits in one sitting. Keep the cuts at method boundaries.
  'engine-cycle': { files: ['main/sync/engine.ts:1-330'], what: 'the sync engine\'s life: start, pause, status, the cycle', tests: ENGINE_TESTS },
  'engine-audit': { files: ['main/sync/engine.ts:331-510', 'main/sync/relay-audit.ts'], what: 'the relay audit (lost, rolled back, withheld), recovery and repairs, pushing', tests: ENGINE_TESTS },
  'engine-flow': { files: ['main/sync/engine.ts:511-99999'], what: 'the sync engine\'s receiving, membership, progress, transports and timers', tests: ENGINE_TESTS },
  transports: { files: ['main/sync/transport.ts', 'main/sync/http-transport.ts', 'main/sync/encrypted-transport.ts', 'main/sync/codec.ts', 'main/sync/relay-client.ts'], what: 'the transport contract, HTTP, end-to-end encryption, the relay client', tests: ['test/sync/codec.test.ts', 'test/sync/transport-contract.test.ts', 'test/sync/http-transport.test.ts', 'test/sync/encrypted-transport.test.ts', 'test/sync/body-key-cache.test.ts', 'test/sync/relay-client.test.ts', 'test/sync/engine-fallback.test.ts', 'test/sync/push-window.test.ts', ...RELAY_CLIENT_TESTS] },
  websocket: { files: ['main/sync/ws-transport.ts', 'main/sync/ws-state.ts'], what: 'the WebSocket transport and its state machine', tests: ['test/sync/ws-transport.test.ts', 'test/sync/ws-transport-rules.test.ts', 'test/sync/ws-state.test.ts', 'test/sync/transport-contract.test.ts', 'test/sync/engine-fallback.test.ts', 'test/sync/push-window.test.ts'] },
  'sync-rest': { files: ['main/sync/membership-sync.ts', 'main/sync/member-keyring.ts', 'main/sync/snapshot-sync.ts'], what: 'membership, member keys and snapshot sync', tests: ['test/sync/membership-sync.test.ts', 'test/sync/member-keys.test.ts', 'test/sync/snapshot-resume.test.ts', 'test/sync/snapshots.test.ts', 'test/app-controller-keys.test.ts', 'test/app-controller.test.ts'] },
  auth: { files: ['relay/auth.ts'], what: 'the relay\'s token and request authentication' },
};

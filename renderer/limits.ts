// The interval limits of the IPC contract (shared/ipc-contract.ts), repeated here because the window may
// import only types from shared/; test/ipc-contract.test.ts checks they stay equal.
export const MIN_INTERVAL_SECONDS = 5;
export const MAX_INTERVAL_SECONDS = 86_400;

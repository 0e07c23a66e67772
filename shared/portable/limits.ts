// Limits that both the main process (to validate) and the window (to guide input) need. Imports nothing, so
// the renderer may import it as values (eslint.config.js: the pure modules of shared/).
export const MIN_INTERVAL_SECONDS = 5;
export const MAX_INTERVAL_SECONDS = 86_400;

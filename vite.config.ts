// The settings window (renderer/) is built with Vite into dist/renderer, loaded by the Electron window and
// served by the UI harness. It runs with no Node: it talks to main only through window.motebit (preload),
// or in a browser through the harness's socket bridge. The output has no inline script (strict CSP).
import { defineConfig } from 'vite';

export default defineConfig({
  root: 'renderer',
  base: './',
  build: {
    outDir: '../dist/renderer',
    emptyOutDir: true,
    target: 'chrome140',
    modulePreload: { polyfill: false },
  },
});

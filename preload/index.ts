// The settings window's preload (sandboxed, context-isolated): exposes window.motebit and nothing else.
// Bundled into one CommonJS file (dist/preload/preload.cjs) by scripts/build.ts: a sandboxed preload can
// require only 'electron' and a few built-ins, never our own modules.
import { contextBridge, ipcRenderer } from 'electron';
import { createBridge } from './bridge.ts';

contextBridge.exposeInMainWorld('motebit', createBridge(ipcRenderer));

#!/usr/bin/env node
// motebit-sync: the device's services from a terminal (the same main/app code as the tray app).
// This entry only turns on Node's module compile cache, then loads the CLI (cli/run.ts). Start-up is most
// of a command's time (a put itself is 2–3 ms): with the cache, the next run reuses the compiled code and,
// for the .ts sources, their stripped text, from the OS temp folder (NODE_COMPILE_CACHE chooses another
// folder, NODE_DISABLE_COMPILE_CACHE=1 turns it off). The import is dynamic because static imports would
// all be compiled before this line runs. package.json "bin" runs the build of this file (dist/cli/main.js,
// npm run build:cli); node cli/main.ts runs the sources.
import { enableCompileCache } from 'node:module';

enableCompileCache();
const { main } = await import('./run.ts');
process.exitCode = await main(process.argv.slice(2));

// npm start: the most complete thing that runs today, a relay on 127.0.0.1:8787 (./relay.db). The tray
// app takes this place when it lands; until then devices sync through this relay.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const relay = fileURLToPath(new URL('../relay/bin.ts', import.meta.url));
const args = process.argv.slice(2);
const child = spawn(process.execPath, [relay, ...(args.length ? args : ['--port', '8787', '--db', './relay.db'])], { stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));

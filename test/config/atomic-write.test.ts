// The atomic file write (main/config/atomic-write.ts) at the system-call level: a child process writes a
// file while strace records its calls, and the order must be the one that survives a power cut — the temp
// file fsynced before it is renamed over the target, then the folder fsynced so the rename itself is
// durable. Removing either fsync fails this test. Without strace it is reported skipped, never passed.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const STRACE = spawnSync('strace', ['-V']).status === 0;
const MODULE = fileURLToPath(new URL('../../main/config/atomic-write.ts', import.meta.url));

describe('atomic file write', () => {
  it.skipIf(!STRACE)(`fsyncs the file before the rename and the folder after it${STRACE ? '' : ' (skipped: strace is not installed)'}`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'motebit-atomic-'));
    try {
      const target = join(dir, 'config.json');
      const trace = join(dir, 'trace.txt');
      const script = `import(${JSON.stringify(MODULE)}).then((m) => m.writeFileAtomic(${JSON.stringify(target)}, 'hello\\n'))`;
      // -f: Node does file I/O on its thread pool. -e: only the calls that matter, with file descriptors as paths (-y).
      execFileSync('strace', ['-f', '-y', '-qq', '-e', 'trace=fsync,fdatasync,rename,renameat,renameat2', '-o', trace, process.execPath, '-e', script]);
      expect(readFileSync(target, 'utf8')).toBe('hello\n');
      const calls = readFileSync(trace, 'utf8')
        .split('\n')
        .filter((line) => /(fsync|fdatasync|rename\w*)\(/.test(line) && !line.includes('unfinished') && !/= -1/.test(line));
      const fileSync = calls.findIndex((line) => /f(data)?sync\(\d+<[^>]*\.config\.json\.[^>]*\.tmp>/.test(line));
      const renamed = calls.findIndex((line) => /rename\w*\(.*\.config\.json\..*\.tmp.*config\.json/.test(line));
      const dirSync = calls.findIndex((line, i) => i > renamed && new RegExp(`f(data)?sync\\(\\d+<${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}>\\)`).test(line));
      expect(fileSync, calls.join('\n')).toBeGreaterThanOrEqual(0);
      expect(renamed, calls.join('\n')).toBeGreaterThan(fileSync);
      expect(dirSync, calls.join('\n')).toBeGreaterThan(renamed);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

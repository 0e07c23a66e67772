// What this process holds open, read from /proc (Linux): a refused or closed store must leave none of its files open.
import { readdirSync, readlinkSync } from 'node:fs';

/** File descriptors of this process open on `path` or a file beside it whose name starts with it (-wal, -shm). */
export const openHandles = (path: string): number =>
  readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith(path);
    } catch {
      return false; // closed while listing
    }
  }).length;

// Who in this process listens to which motebit, and delivering a notification to each of them: one
// listener's failure is its own, the others still hear the news.
import type { Notification } from './store.ts';

export type Listener = (notification: Notification) => void;

export class Subscribers {
  readonly #listeners = new Map<string, Set<Listener>>();

  add(motebitId: string, listener: Listener): () => void {
    let set = this.#listeners.get(motebitId);
    if (!set) {
      set = new Set();
      this.#listeners.set(motebitId, set);
    }
    set.add(listener);
    return () => {
      const current = this.#listeners.get(motebitId);
      if (!current) return;
      current.delete(listener);
      if (current.size === 0) this.#listeners.delete(motebitId);
    };
  }

  has(motebitId: string): boolean {
    return this.#listeners.has(motebitId);
  }

  /** Every motebit somebody listens to. */
  motebits(): string[] {
    return [...this.#listeners.keys()];
  }

  notify(motebitId: string, notification: Notification): void {
    for (const listener of [...(this.#listeners.get(motebitId) ?? [])]) {
      try {
        listener(notification);
      } catch {
        // a subscriber's failure is its own
      }
    }
  }

  clear(): void {
    this.#listeners.clear();
  }
}

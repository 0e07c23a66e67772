// One typed listener set with one policy for a listener that throws: the failure is its own. It is
// reported (to `onListenerError`, e.g. a log), the other listeners still hear the value, and emit() never
// throws, so an emitter's caller (a sync cycle, a socket handler) cannot be broken by whoever listens.
// Imports nothing.
export type Listener<T> = (value: T) => void;

export class Emitter<T> {
  readonly #listeners = new Set<Listener<T>>();
  readonly #onListenerError: (error: unknown) => void;

  constructor(onListenerError: (error: unknown) => void = () => undefined) {
    this.#onListenerError = onListenerError;
  }

  /** Adds a listener; the returned function removes it. */
  on(listener: Listener<T>): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  get size(): number {
    return this.#listeners.size;
  }

  /** Tells every listener, in the order they were added; a listener that throws is reported and skipped. */
  emit(value: T): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(value);
      } catch (error) {
        try {
          this.#onListenerError(error);
        } catch {
          // the reporter's own failure is not the emitter's caller's either
        }
      }
    }
  }
}

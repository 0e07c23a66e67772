// The content keys of a device of a motebit with a membership log (docs/keys.md): every epoch key its
// verified log gives it (openKeys), the newest sealing what it pushes. Updated after every membership
// refresh, so a new epoch (a device removed, a rotation) is used from the next push on, and events sealed
// under it open. A device that was removed keeps only the epochs it was given: nothing written after.
import type { MembershipState } from '../../shared/membership/log.ts';
import { openKeys, type KeyReader } from '../../shared/membership/open-keys.ts';
import type { BodyKey, BodyKeyring } from './encrypted-transport.ts';

export class MemberKeyring implements BodyKeyring {
  readonly #reader: KeyReader;
  #keys = new Map<string, Buffer>();
  #current: BodyKey | null = null;
  #opened: MembershipState | null = null;

  private constructor(reader: KeyReader) {
    this.#reader = reader;
  }

  /** The keys `reader` can open from `state`; throws MembershipError when a wrap for it is forged or damaged. */
  static async open(state: MembershipState, reader: KeyReader): Promise<MemberKeyring> {
    const keyring = new MemberKeyring(reader);
    await keyring.update(state);
    return keyring;
  }

  /** Takes the keys of a newer verified log (nothing changes when the log has not moved). */
  async update(state: MembershipState): Promise<void> {
    if (state === this.#opened) return;
    const keys = await openKeys(state, this.#reader);
    // The newest epoch this member holds seals what it pushes (openKeys lists newest first).
    const first = keys.entries().next();
    if (first.done) throw new RangeError(`member ${this.#reader.id} holds no key of this motebit`);
    this.#keys = keys;
    this.#current = { id: first.value[0], key: first.value[1] };
    this.#opened = state;
  }

  get current(): BodyKey {
    return this.#current!;
  }

  byId(id: string): Buffer | undefined {
    return this.#keys.get(id);
  }
}

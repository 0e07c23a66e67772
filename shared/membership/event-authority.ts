// Who may write the events of a motebit with a membership log (docs/keys.md, "Events and the log"): the
// log this device verified decides, whatever the relay serves. An event names the log position its writer
// knew (`m`); it is admitted only if its writer was a member there and, if removed since, the event is not
// after the cutoff its removal named (mayWrite, the one place that rule is written). Its seal must be made
// by the member's own signing key as the log records it; there is no identity key and no certificate.
// An upgraded protocol-2 motebit also admits its events from before the upgrade (no position, a
// certificate of the old identity key), each device's only up to the cutoff the log records for it.
import type { EventAuthority } from '../chain.ts';
import { fromBase64Url } from '../encoding.ts';
import { checkSeal, checkSealSignature } from '../event.ts';
import { mayWrite, mayWriteLegacy, type MembershipState } from './log.ts';

export function membershipAuthority(state: MembershipState): EventAuthority {
  return {
    admit(event, hash) {
      const verdict = event.m === undefined ? mayWriteLegacy(state, event.device_id, event.device_seq) : mayWrite(state, event.device_id, event.device_seq, event.m, hash);
      return verdict.ok ? null : verdict.reason;
    },
    seal(event, hash) {
      const seal = event.seal;
      if (!seal) return 'bad_signature';
      // An event from before an upgrade is sealed as protocol 2 sealed it: certified by the old identity key.
      if (event.m === undefined) return state.legacy ? checkSeal(event, hash, fromBase64Url(state.legacy.identityKey)) : 'bad_device_cert';
      const member = state.members.get(event.device_id);
      if (!member || member.key.role !== 'device' || seal.key !== member.key.sign_key) return 'device_key_mismatch';
      if (seal.cert !== undefined) return 'bad_device_cert';
      return checkSealSignature(event, hash, fromBase64Url(member.key.sign_key));
    },
  };
}

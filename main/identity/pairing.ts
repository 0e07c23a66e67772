// The pairing code: how an existing device hands a new one, out of band (screen to camera, or copy and
// paste), what it needs to become the motebit: the master token and the relay URL. The master token
// never passes through the relay. Text form:
//
//   motebit-pair:1:<base64url of JSON {"relay":…,"token":"mbk1_…","encryption":true}>:<checksum>
//
// The code IS the master token: whoever sees it can join as this motebit (docs/security.md).
import { z } from 'zod';
import { canonicalJson } from '../../shared/encoding.ts';
import { RelayUrlError, parseRelayUrl } from '../config/relay-url.ts';
import { CHECKSUM_LENGTH, textChecksum } from '../../shared/checksum.ts';
import { MasterTokenFormatError, formatMasterToken, parseMasterToken } from './master-token.ts';

export const PAIRING_PREFIX = 'motebit-pair';
export const PAIRING_VERSION = 1;
const CHECKSUM_DOMAIN = 'motebit/pairing/v1';

export interface PairingInfo {
  /** The 32-byte master token. */
  readonly masterToken: Buffer;
  /** The relay origin. */
  readonly relayUrl: string;
  /** Whether the motebit's devices encrypt what they push (the new device follows the same setting). */
  readonly encryption: boolean;
}

const PayloadSchema = z.strictObject({
  relay: z.string(),
  token: z.string(),
  encryption: z.boolean(),
});

/** The pairing code is not valid; the message says what is wrong and what to do. */
export class PairingCodeError extends Error {
  override readonly name = 'PairingCodeError';
}

export function encodePairingCode(info: PairingInfo): string {
  const payload = canonicalJson({ relay: parseRelayUrl(info.relayUrl), token: formatMasterToken(info.masterToken), encryption: info.encryption });
  const head = `${PAIRING_PREFIX}:${PAIRING_VERSION}:${Buffer.from(payload, 'utf8').toString('base64url')}`;
  return `${head}:${textChecksum(CHECKSUM_DOMAIN, head)}`;
}

const RETRY = 'Copy the whole code again from the existing device (Settings → Add a device).';

export function decodePairingCode(text: string): PairingInfo {
  const code = text.replace(/\s+/g, ''); // codes wrapped over lines or pasted with spaces
  const parts = code.split(':');
  if (parts[0] !== PAIRING_PREFIX) throw new PairingCodeError(`not a pairing code: it starts with "${PAIRING_PREFIX}:". ${RETRY}`);
  if (parts.length !== 4) throw new PairingCodeError(`the pairing code is incomplete (expected 4 parts separated by ":", found ${parts.length}). ${RETRY}`);
  const [, version, payload = '', checksum = ''] = parts;
  if (version !== String(PAIRING_VERSION)) {
    throw new PairingCodeError(`pairing code version ${version} is not supported by this app (it reads version ${PAIRING_VERSION}); update the app that is older`);
  }
  if (checksum.length !== CHECKSUM_LENGTH || textChecksum(CHECKSUM_DOMAIN, `${PAIRING_PREFIX}:${version}:${payload}`) !== checksum) {
    throw new PairingCodeError(`the pairing code checksum does not match: a character is mistyped or missing. ${RETRY}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    throw new PairingCodeError(`the pairing code's content is not readable. ${RETRY}`);
  }
  const parsed = PayloadSchema.safeParse(json);
  if (!parsed.success) throw new PairingCodeError(`the pairing code's content is not valid: ${z.prettifyError(parsed.error)}`);
  try {
    return { masterToken: parseMasterToken(parsed.data.token), relayUrl: parseRelayUrl(parsed.data.relay), encryption: parsed.data.encryption };
  } catch (error) {
    if (error instanceof MasterTokenFormatError || error instanceof RelayUrlError) {
      throw new PairingCodeError(`the pairing code is not valid: ${error.message}`, { cause: error });
    }
    throw error;
  }
}

export const QR_ERROR_CORRECTION = 'M';

/**
 * The code as a QR code drawn with Unicode half blocks, for a terminal. Block characters print in the
 * text colour, so on a dark terminal (the default here) the light modules are the ones drawn; pass
 * lightBackground for dark text on a light background. Scanners need the dark modules to be dark.
 */
export async function pairingQrText(code: string, { lightBackground = false } = {}): Promise<string> {
  const color = lightBackground ? { dark: '#000000', light: '#ffffff' } : { dark: '#ffffff', light: '#000000' };
  const { default: QRCode } = await import('qrcode'); // loaded only when a QR is drawn
  return QRCode.toString(code, { type: 'utf8', errorCorrectionLevel: QR_ERROR_CORRECTION, color });
}

/** The code as a QR code in SVG, for the app window. */
export async function pairingQrSvg(code: string): Promise<string> {
  const { default: QRCode } = await import('qrcode');
  return QRCode.toString(code, { type: 'svg', errorCorrectionLevel: QR_ERROR_CORRECTION, margin: 2 });
}

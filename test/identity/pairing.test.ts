import QRCode from 'qrcode';
import { describe, expect, it } from 'vitest';
import { generateMasterToken } from '../../main/identity/master-token.ts';
import { PairingCodeError, QR_ERROR_CORRECTION, decodePairingCode, encodePairingCode, pairingQrSvg, pairingQrText } from '../../main/identity/pairing.ts';

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

function newCode(relayUrl = 'https://relay.example.com', encryption = true) {
  const masterToken = generateMasterToken();
  return { masterToken, code: encodePairingCode({ masterToken, relayUrl, encryption }) };
}

/** Reads the dark/light modules back out of the half-block rendering (inverse of qrcode's utf8 renderer). */
function modulesFromText(text: string, darkIsDrawn: boolean): boolean[][] {
  const rows: boolean[][] = [];
  for (const line of text.split('\n')) {
    const top: boolean[] = [];
    const bottom: boolean[] = [];
    for (const char of line) {
      const drawnTop = char === '█' || char === '▀';
      const drawnBottom = char === '█' || char === '▄';
      top.push(drawnTop === darkIsDrawn);
      bottom.push(drawnBottom === darkIsDrawn);
    }
    rows.push(top, bottom);
  }
  return rows;
}

function expectedModules(code: string): boolean[][] {
  const { modules } = QRCode.create(code, { errorCorrectionLevel: QR_ERROR_CORRECTION });
  const rows: boolean[][] = [];
  for (let r = 0; r < modules.size; r++) rows.push(Array.from({ length: modules.size }, (_, c) => modules.get(r, c) === 1));
  return rows;
}

/** Finds the symbol inside the rendering (inside its quiet zone) and returns it, size × size. */
function symbolIn(rendered: boolean[][], size: number): boolean[][] {
  const top = rendered.findIndex((row) => row.some(Boolean));
  const left = Math.min(...rendered.filter((row) => row.some(Boolean)).map((row) => row.indexOf(true)));
  return rendered.slice(top, top + size).map((row) => row.slice(left, left + size));
}

describe('pairing code', () => {
  it('round-trips the master token, relay URL and encryption setting', () => {
    for (const [relay, encryption] of [['https://relay.example.com', true], ['http://127.0.0.1:8787', false]] as const) {
      const { masterToken, code } = newCode(relay, encryption);
      expect(code).toMatch(/^motebit-pair:1:[A-Za-z0-9_-]+:[A-Za-z0-9_-]{6}$/);
      const info = decodePairingCode(code);
      expect(info.masterToken.equals(masterToken)).toBe(true);
      expect(info.relayUrl).toBe(relay);
      expect(info.encryption).toBe(encryption);
    }
  });

  it('normalises the relay URL to its origin and refuses one with a path', () => {
    const masterToken = generateMasterToken();
    expect(decodePairingCode(encodePairingCode({ masterToken, relayUrl: 'HTTPS://Relay.Example.com:443/', encryption: true })).relayUrl).toBe('https://relay.example.com');
    expect(() => encodePairingCode({ masterToken, relayUrl: 'https://relay.example.com/v1', encryption: true })).toThrow(/no path/);
  });

  it('accepts a code wrapped over lines or pasted with spaces', () => {
    const { masterToken, code } = newCode();
    const wrapped = `  ${code.slice(0, 30)}\n${code.slice(30, 70)} ${code.slice(70)}\n`;
    expect(decodePairingCode(wrapped).masterToken.equals(masterToken)).toBe(true);
  });

  it('catches a typo anywhere in the payload or checksum', () => {
    const { code } = newCode();
    const start = 'motebit-pair:1:'.length;
    let tried = 0;
    for (let i = start; i < code.length; i++) {
      if (code[i] === ':') continue;
      const c = BASE64URL[(BASE64URL.indexOf(code[i] ?? 'A') + 1 + (i % 60)) % 64] ?? 'A';
      const typo = code.slice(0, i) + c + code.slice(i + 1);
      expect(() => decodePairingCode(typo), `position ${i}`).toThrow(PairingCodeError);
      tried++;
    }
    expect(tried).toBeGreaterThan(100);
  });

  it('explains wrong prefix, missing parts, other versions and truncation', () => {
    const { code } = newCode();
    expect(() => decodePairingCode('mbk1_abc')).toThrow(/not a pairing code/);
    expect(() => decodePairingCode(code.split(':').slice(0, 3).join(':'))).toThrow(/incomplete .*found 3/);
    expect(() => decodePairingCode(code.replace('motebit-pair:1:', 'motebit-pair:2:'))).toThrow(/version 2 is not supported/);
    expect(() => decodePairingCode(code.slice(0, -10) + code.slice(-7))).toThrow(/checksum does not match/);
  });

  it('renders the same text as a QR code, for a dark and a light terminal', async () => {
    const { code } = newCode();
    const expected = expectedModules(code);
    const dark = await pairingQrText(code);
    const light = await pairingQrText(code, { lightBackground: true });
    expect(symbolIn(modulesFromText(dark, false), expected.length)).toEqual(expected);
    expect(symbolIn(modulesFromText(light, true), expected.length)).toEqual(expected);
    // Another code draws another symbol: the comparison above is not vacuous.
    const other = expectedModules(newCode().code);
    expect(symbolIn(modulesFromText(dark, false), other.length)).not.toEqual(other);
    const svg = await pairingQrSvg(code);
    expect(svg.startsWith('<svg')).toBe(true);
  });
});

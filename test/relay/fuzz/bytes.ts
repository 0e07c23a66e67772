// Byte helpers shared by the generators.

/** A string as bytes: Latin-1 when every char fits a byte (so raw bytes such as 0xff go out as is), else UTF-8. */
export function bytesOf(text: string): Buffer {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0xff) return Buffer.from(text, 'utf8');
  return Buffer.from(text, 'latin1');
}

/** Cuts `bytes` at the given fractions (sorted, deduplicated) into consecutive pieces. */
export function splitAt(bytes: Buffer, fractions: number[]): Buffer[] {
  const cuts = [...new Set(fractions.map((f) => Math.floor(f * bytes.length)))].filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let from = 0;
  for (const cut of cuts) {
    pieces.push(bytes.subarray(from, cut));
    from = cut;
  }
  pieces.push(bytes.subarray(from));
  return pieces;
}

/** A short printable preview of bytes for failure messages (JSON-escaped Latin-1, elided in the middle). */
export function preview(bytes: Buffer, max = 1500): string {
  const text = bytes.toString('latin1');
  const shown = text.length <= max ? text : `${text.slice(0, max / 2)}…(${text.length - max} bytes elided)…${text.slice(-max / 2)}`;
  return `${bytes.length} bytes: ${JSON.stringify(shown)}`;
}

// npm run icons: draws the motebit glyph (a mote with a companion dot on its orbit: one identity, its
// devices around it) and writes every icon the app and its packages need:
//   build/icons/<N>x<N>.png   app icon, N = 16…1024 (electron-builder's Linux icon set, window icon)
//   build/icon.png            1024 px (generic source)
//   build/icon.ico            Windows (PNG-compressed entries 16…256)
//   build/icon.icns           macOS (PNG-compressed entries 16…1024)
//   build/tray/tray-<kind>-<N>[@2x].png   tray icons per state, N = 16 and 32, each with its @2x file
// Deterministic: the same script always writes the same bytes, so the PNGs can be committed.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';
import { TRAY_ICON_KINDS, TRAY_ICON_SIZES, type TrayIconKind } from '../main/app/tray-icon.ts';

type RGB = readonly [number, number, number];
/** A shape: does it cover point (x, y) of the unit square, and in which colour. */
type Layer = { color: RGB; alpha?: number; covers: (x: number, y: number) => boolean };

const disc = (cx: number, cy: number, r: number) => (x: number, y: number) => (x - cx) ** 2 + (y - cy) ** 2 <= r * r;
const ring = (cx: number, cy: number, r: number, w: number) => (x: number, y: number) => {
  const d = Math.hypot(x - cx, y - cy);
  return d <= r + w / 2 && d >= r - w / 2;
};
const rect = (x0: number, y0: number, x1: number, y1: number) => (x: number, y: number) => x >= x0 && x <= x1 && y >= y0 && y <= y1;
const roundedSquare = (inset: number, radius: number) => (x: number, y: number) => {
  const lo = inset + radius;
  const hi = 1 - inset - radius;
  const dx = Math.max(lo - x, 0, x - hi);
  const dy = Math.max(lo - y, 0, y - hi);
  return dx * dx + dy * dy <= radius * radius;
};

const INK: RGB = [0x1d, 0x24, 0x33];
const TEAL: RGB = [0x2d, 0xc2, 0xa6];
const GOLD: RGB = [0xff, 0xc8, 0x57];
const BLUE: RGB = [0x3b, 0x82, 0xf6];
const GREY: RGB = [0x8a, 0x93, 0xa3];
const RED: RGB = [0xe5, 0x48, 0x4d];
const AMBER: RGB = [0xf5, 0x9e, 0x0b];
const WHITE: RGB = [0xff, 0xff, 0xff];

/** Renders layers (painted in order) with 4×4 supersampling for smooth edges; returns a PNG. */
function render(size: number, layers: readonly Layer[]): Buffer {
  const png = new PNG({ width: size, height: size });
  const n = 4;
  for (let py = 0; py < size; py++) {
    for (let px = 0; px < size; px++) {
      let r = 0;
      let g = 0;
      let b = 0;
      let a = 0;
      for (let sy = 0; sy < n; sy++) {
        for (let sx = 0; sx < n; sx++) {
          const x = (px + (sx + 0.5) / n) / size;
          const y = (py + (sy + 0.5) / n) / size;
          // composite this sample: "over", back to front
          let cr = 0;
          let cg = 0;
          let cb = 0;
          let ca = 0;
          for (const layer of layers) {
            if (!layer.covers(x, y)) continue;
            const la = layer.alpha ?? 1;
            cr = layer.color[0] * la + cr * (1 - la);
            cg = layer.color[1] * la + cg * (1 - la);
            cb = layer.color[2] * la + cb * (1 - la);
            ca = la + ca * (1 - la);
          }
          r += cr;
          g += cg;
          b += cb;
          a += ca;
        }
      }
      const i = (py * size + px) * 4;
      const samples = n * n;
      png.data[i] = a > 0 ? Math.round(r / a) : 0; // un-premultiply
      png.data[i + 1] = a > 0 ? Math.round(g / a) : 0;
      png.data[i + 2] = a > 0 ? Math.round(b / a) : 0;
      png.data[i + 3] = Math.round((a / samples) * 255);
    }
  }
  return PNG.sync.write(png, { colorType: 6 });
}

/** The app icon: the glyph on a dark rounded square. */
function appIconLayers(): Layer[] {
  return [
    { color: INK, covers: roundedSquare(0.04, 0.2) },
    { color: TEAL, alpha: 0.55, covers: ring(0.47, 0.53, 0.3, 0.035) },
    { color: TEAL, covers: disc(0.47, 0.53, 0.19) },
    { color: WHITE, alpha: 0.35, covers: disc(0.41, 0.47, 0.06) },
    { color: INK, covers: disc(0.68, 0.32, 0.11) },
    { color: GOLD, covers: disc(0.68, 0.32, 0.08) },
  ];
}

/** A tray glyph: no background, readable at 16 px; the state is its colour plus a badge. */
function trayLayers(kind: TrayIconKind): Layer[] {
  const body = kind === 'idle' || kind === 'conflicts' || kind === 'error' ? TEAL : kind === 'syncing' ? BLUE : GREY;
  const hollow = kind === 'offline' || kind === 'setup';
  const layers: Layer[] = [
    hollow ? { color: body, covers: ring(0.42, 0.58, 0.27, 0.13) } : { color: body, covers: disc(0.42, 0.58, 0.33) },
  ];
  // the companion dot; none yet while no motebit is set up
  if (kind !== 'setup') layers.push({ color: kind === 'syncing' ? BLUE : kind === 'idle' ? GOLD : body, covers: disc(0.8, 0.2, 0.15) });
  const badge = (color: RGB, mark?: (x: number, y: number) => boolean): void => {
    // a cut-out ring so the badge reads against the glyph, then the badge and its white mark
    layers.push({ color: WHITE, covers: disc(0.76, 0.76, 0.26) });
    layers.push({ color, covers: disc(0.76, 0.76, 0.22) });
    if (mark) layers.push({ color: WHITE, covers: mark });
  };
  if (kind === 'error') badge(RED, (x, y) => rect(0.725, 0.6, 0.795, 0.79)(x, y) || rect(0.725, 0.84, 0.795, 0.91)(x, y));
  if (kind === 'conflicts') badge(AMBER, (x, y) => rect(0.64, 0.72, 0.88, 0.8)(x, y));
  if (kind === 'paused') badge(GREY, (x, y) => rect(0.66, 0.64, 0.73, 0.88)(x, y) || rect(0.79, 0.64, 0.86, 0.88)(x, y));
  return layers;
}

// ---- container formats ---------------------------------------------------------------------------

/** .ico with PNG-compressed entries (Windows Vista and later). */
function ico(entries: readonly { size: number; png: Buffer }[]): Buffer {
  const header = Buffer.alloc(6 + 16 * entries.length);
  header.writeUInt16LE(0, 0);
  header.writeUInt16LE(1, 2); // icon
  header.writeUInt16LE(entries.length, 4);
  let offset = header.length;
  entries.forEach(({ size, png }, i) => {
    const at = 6 + 16 * i;
    header.writeUInt8(size >= 256 ? 0 : size, at);
    header.writeUInt8(size >= 256 ? 0 : size, at + 1);
    header.writeUInt8(0, at + 2);
    header.writeUInt8(0, at + 3);
    header.writeUInt16LE(1, at + 4); // planes
    header.writeUInt16LE(32, at + 6); // bits per pixel
    header.writeUInt32LE(png.length, at + 8);
    header.writeUInt32LE(offset, at + 12);
    offset += png.length;
  });
  return Buffer.concat([header, ...entries.map((e) => e.png)]);
}

/** .icns with PNG entries (OSType per pixel size; the @2x types share the same pixels). */
function icns(pngBySize: ReadonlyMap<number, Buffer>): Buffer {
  const types: [string, number][] = [
    ['icp4', 16],
    ['icp5', 32],
    ['icp6', 64],
    ['ic07', 128],
    ['ic08', 256],
    ['ic09', 512],
    ['ic10', 1024],
    ['ic11', 32],
    ['ic12', 64],
    ['ic13', 256],
    ['ic14', 512],
  ];
  const chunks = types.map(([type, size]) => {
    const png = pngBySize.get(size);
    if (!png) throw new Error(`no ${size} px icon for ${type}`);
    const head = Buffer.alloc(8);
    head.write(type, 0, 'ascii');
    head.writeUInt32BE(png.length + 8, 4);
    return Buffer.concat([head, png]);
  });
  const body = Buffer.concat(chunks);
  const head = Buffer.alloc(8);
  head.write('icns', 0, 'ascii');
  head.writeUInt32BE(body.length + 8, 4);
  return Buffer.concat([head, body]);
}

export const APP_ICON_SIZES = [16, 24, 32, 48, 64, 128, 256, 512, 1024] as const;

export function makeIcons(buildDir: string): string[] {
  const written: string[] = [];
  const write = (file: string, data: Buffer): void => {
    writeFileSync(join(buildDir, file), data);
    written.push(file);
  };
  mkdirSync(join(buildDir, 'icons'), { recursive: true });
  mkdirSync(join(buildDir, 'tray'), { recursive: true });
  const app = new Map<number, Buffer>();
  for (const size of APP_ICON_SIZES) {
    const png = render(size, appIconLayers());
    app.set(size, png);
    write(`icons/${size}x${size}.png`, png);
  }
  write('icon.png', app.get(1024)!);
  write('icon.ico', ico([16, 24, 32, 48, 64, 128, 256].map((size) => ({ size, png: app.get(size)! }))));
  write('icon.icns', icns(app));
  for (const kind of TRAY_ICON_KINDS) {
    for (const size of TRAY_ICON_SIZES) {
      write(`tray/tray-${kind}-${size}.png`, render(size, trayLayers(kind)));
      write(`tray/tray-${kind}-${size}@2x.png`, render(size * 2, trayLayers(kind)));
    }
  }
  return written;
}

if (import.meta.main) {
  const buildDir = fileURLToPath(new URL('../build', import.meta.url));
  const written = makeIcons(buildDir);
  console.log(`wrote ${written.length} icons to build/ (app icon ${APP_ICON_SIZES.join(', ')} px, .ico, .icns; tray icons per state)`);
}

// How the window shows a code to copy by hand or scan: the text in groups (monospace, selectable, wrapping
// only between groups; copying it gives the exact text), its QR code, and the six digits two devices compare.
import { h } from './dom.ts';

/** "MBP1-ABCD-…" as groups that wrap between them; textContent is the code exactly. */
export function codeText(code: string, attrs: Record<string, string> = {}): HTMLElement {
  const groups = code.split('-');
  const element = h('p', { className: 'code-text mono', ...attrs });
  groups.forEach((group, i) => {
    element.append(h('span', { className: 'code-group' }, i < groups.length - 1 ? `${group}-` : group));
    if (i < groups.length - 1) element.append(h('wbr'));
  });
  return element;
}

/** A QR code (SVG from main) shown as an image from a data: URL: an <img> never runs script, nothing is parsed as markup. */
export function qrImage(svg: string, alt: string): HTMLImageElement {
  return h('img', { className: 'qr', alt, width: 220, height: 220, src: `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}` });
}

/** The six digits, large ("123 456"), read digit by digit by a screen reader. */
export function sasDigits(sas: string, testid: string): HTMLElement {
  return h('p', { className: 'sas', 'data-testid': testid, 'aria-label': `Digits: ${sas.replace(/\s/g, '').split('').join(' ')}` }, sas);
}

/** "until 08:12 (about 10 minutes)". */
export function untilWords(expiresAt: number, now = Date.now()): string {
  const time = new Date(expiresAt).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  const minutes = Math.round((expiresAt - now) / 60_000);
  return `until ${time} (${minutes < 1 ? 'less than a minute' : minutes === 1 ? 'about a minute' : `about ${minutes} minutes`})`;
}

/**
 * What a device waiting to be approved shows first: its one-time code (QR and text, how long it works) and
 * where to enter it (`instruction`). `testid` names the code ("<testid>-code") and its expiry ("<testid>-expiry").
 */
export function codeStep(code: { code: string; qrSvg: string; expiresAt: number }, testid: string, instruction: Node, cancel: HTMLElement): Node[] {
  return [
    h(
      'div',
      { className: 'code-grid' },
      qrImage(code.qrSvg, 'QR code of the one-time code'),
      h('div', {}, codeText(code.code, { 'data-testid': `${testid}-code` }), h('p', { className: 'hint', 'data-testid': `${testid}-expiry` }, `It works once, ${untilWords(code.expiresAt)}. Nothing secret is in it.`)),
    ),
    h('p', {}, instruction),
    h('p', { className: 'waiting', role: 'status' }, 'Waiting for your other device…'),
    h('div', { className: 'actions' }, cancel),
  ];
}

/** Then, once a member answered: the six digits to compare, and what to do if they differ. */
export function digitsStep(sas: string, testid: string, cancel: HTMLElement): Node[] {
  return [
    h('p', {}, 'Your other device answered. Both screens now show six digits:'),
    sasDigits(sas, `${testid}-sas`),
    h('p', {}, h('strong', {}, 'Approve only if the other device shows the same digits.'), ' If they differ, choose Don’t approve there: someone else may be answering.'),
    h('p', { className: 'waiting', role: 'status' }, 'Waiting for the approval on your other device…'),
    h('div', { className: 'actions' }, cancel),
  ];
}

// Shared pieces of the window: labelled fields with their own error line, buttons that show they are busy,
// and the bridge call that never throws.
import type { Channel, ChannelInput, ChannelOutput, IpcError, IpcResult, MotebitBridge } from '../shared/portable/ipc-contract.ts';
import { h, replace, uid } from './dom.ts';

export { sentence } from '../shared/portable/words.ts';

export type Call = <C extends Channel>(channel: C, input: ChannelInput<C>) => Promise<IpcResult<ChannelOutput<C>>>;

/** A bridge call whose promise always resolves (a thrown bridge error becomes an internal IpcError). */
export function caller(bridge: MotebitBridge): Call {
  return async (channel, input) => {
    try {
      return await bridge.invoke(channel, input);
    } catch (error) {
      return { ok: false, error: { code: 'internal', message: error instanceof Error ? error.message : String(error) } };
    }
  };
}

export interface Field {
  readonly wrap: HTMLElement;
  readonly input: HTMLInputElement | HTMLTextAreaElement;
  /** Shows (or, with null, clears) the error under the field; technical details go behind "Details". */
  setError(message: string | null, details?: string): void;
}

/**
 * The technical text behind a message, folded away: a <details> whose summary is "Details". Null when
 * there is nothing more to say, so a message in words stands alone.
 */
export function detailsDisclosure(details: string | null | undefined, message?: string): HTMLElement | null {
  if (!details) return null;
  if (message !== undefined && sameWords(details, message)) return null; // nothing more to say
  return h('details', { className: 'details' }, h('summary', {}, 'Details'), h('pre', { className: 'details-text' }, details));
}

/** Two texts that say the same (case, spacing and end punctuation aside). */
function sameWords(a: string, b: string): boolean {
  const plain = (text: string) => text.trim().replace(/[.;:]+$/, '').replace(/\s+/g, ' ').toLowerCase();
  return plain(a) === plain(b) || plain(b).startsWith(`${plain(a)}:`);
}

export interface FieldOptions {
  label: string;
  name: string;
  hint?: string;
  value?: string;
  type?: string;
  multiline?: boolean;
  inputmode?: string;
  autocomplete?: string;
  min?: number;
  max?: number;
  required?: boolean;
}

/** A label, an input, a hint and an error line under it (announced when it appears). */
export function field(options: FieldOptions): Field {
  const id = uid(options.name);
  const hintId = `${id}-hint`;
  const errorId = `${id}-error`;
  const describedBy = [options.hint ? hintId : null, errorId].filter(Boolean).join(' ');
  const common = { id, name: options.name, 'aria-describedby': describedBy, autocomplete: options.autocomplete ?? 'off', spellcheck: 'false', required: options.required };
  const input = options.multiline
    ? h('textarea', { ...common, rows: 3 })
    : h('input', { ...common, type: options.type ?? 'text', inputmode: options.inputmode, min: options.min, max: options.max });
  if (options.value !== undefined) input.value = options.value;
  const error = h('div', { id: errorId, className: 'field-error', role: 'alert', hidden: true, 'data-error-for': options.name });
  const wrap = h(
    'div',
    { className: 'field' },
    h('label', { for: id }, options.label),
    options.hint ? h('p', { id: hintId, className: 'hint' }, options.hint) : null,
    input,
    error,
  );
  return {
    wrap,
    input,
    setError(message, details) {
      replace(error, message ?? '', detailsDisclosure(message === null ? null : details, message ?? undefined));
      error.hidden = message === null;
      if (message === null) input.removeAttribute('aria-invalid');
      else input.setAttribute('aria-invalid', 'true');
    },
  };
}

/** Marks a button busy (it keeps focus: aria-disabled, not disabled) with a temporary label; returns the undo. */
export function busy(button: HTMLButtonElement, label: string): () => void {
  const before = button.textContent ?? '';
  button.textContent = label;
  button.setAttribute('aria-disabled', 'true');
  button.setAttribute('aria-busy', 'true');
  return () => {
    button.textContent = before;
    button.removeAttribute('aria-disabled');
    button.removeAttribute('aria-busy');
  };
}

export function isBusy(button: HTMLButtonElement): boolean {
  return button.getAttribute('aria-disabled') === 'true';
}

/**
 * Runs `submit` when the form is submitted: never twice at once, with the button showing `busyLabel`
 * until it settles (even if it throws).
 */
export function onSubmit(form: HTMLFormElement, button: HTMLButtonElement, busyLabel: string, submit: () => Promise<void>): void {
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (isBusy(button)) return;
    const done = busy(button, busyLabel);
    void submit().finally(done);
  });
}

/** A message line for a form or a card: errors are alerts (with their details folded away), confirmations are polite status. */
export function messageLine(): { element: HTMLElement; error(message: string, details?: string): void; ok(message: string): void; clear(): void } {
  const element = h('div', { className: 'message', role: 'status', 'aria-live': 'polite' });
  return {
    element,
    error(message, details) {
      element.className = 'message error';
      element.setAttribute('role', 'alert');
      replace(element, message, detailsDisclosure(details, message));
    },
    ok(message) {
      element.className = 'message ok';
      element.setAttribute('role', 'status');
      element.textContent = message;
    },
    clear() {
      element.className = 'message';
      element.textContent = '';
    },
  };
}

export function errorText(error: IpcError): string {
  return error.message;
}

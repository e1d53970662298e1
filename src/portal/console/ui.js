// Shared building blocks: htm bound to Preact, polling, buttons that confirm, the page chrome.
import { h } from './vendor/preact.module.js';
import { useState, useEffect, useRef, useCallback } from './vendor/hooks.module.js';
import htm from './vendor/htm.module.js';

export const html = htm.bind(h);

// Calls `load` now and every `ms`; keeps the last good data and the last error.
export function usePoll(load, ms, deps = []) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const alive = useRef(true);
  const run = useCallback(async () => {
    try {
      const data = await load();
      if (alive.current) setState({ data, error: null, loading: false });
    } catch (e) {
      if (alive.current) setState((s) => ({ ...s, error: e, loading: false }));
    }
  }, deps);
  useEffect(() => {
    alive.current = true;
    run();
    const t = setInterval(run, ms);
    return () => { alive.current = false; clearInterval(t); };
  }, [run, ms]);
  return { ...state, reload: run };
}

// A button that asks once more before doing something that cannot be undone.
export function ConfirmButton({ label, confirmLabel, onConfirm, className = 'danger', test }) {
  const [armed, setArmed] = useState(false);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    if (!armed) return undefined;
    const t = setTimeout(() => setArmed(false), 5000);
    return () => clearTimeout(t);
  }, [armed]);
  const click = async () => {
    if (!armed) return setArmed(true);
    setBusy(true);
    try { await onConfirm(); } finally { setBusy(false); setArmed(false); }
  };
  return html`<button class=${'btn ' + className + (armed ? ' armed' : '')} data-test=${test} disabled=${busy}
    onClick=${click}>${armed ? (confirmLabel || 'Click again to confirm') : label}</button>`;
}

export function Empty({ title, children }) {
  return html`<div class="empty"><div class="empty-title">${title}</div><div class="empty-body">${children}</div></div>`;
}

export function ErrorNote({ error }) {
  if (!error) return null;
  return html`<div class="note error" role="alert">${error.message || String(error)}</div>`;
}

export function Badge({ kind, children }) {
  return html`<span class=${'badge ' + (kind || '')}>${children}</span>`;
}

// A command line the user copies (install commands).
export function CopyBox({ text, test }) {
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    try { await navigator.clipboard.writeText(text); setCopied(true); setTimeout(() => setCopied(false), 1500); } catch { /* no clipboard: select by hand */ }
  };
  return html`<div class="copybox"><pre data-test=${test}>${text}</pre>
    <button class="btn small" onClick=${copy}>${copied ? 'Copied' : 'Copy'}</button></div>`;
}

// Enrollment tokens (create with the install command, revoke) and the agent's credential
// (revoke, rotate) for one cluster.
import { useState } from './vendor/hooks.module.js';
import { html, usePoll, ConfirmButton, CopyBox, Empty, ErrorNote, Badge } from './ui.js';
import { get, post, del } from './api.js';
import { ago, dateTime } from './format.js';

const kStateBadge = { active: 'ok', used: 'info', expired: 'muted', revoked: 'bad' };

// The answer of a call that issued a token: what to run in the cluster.
export function InstallCommand({ issued, onClose }) {
  if (!issued) return null;
  return html`<div class="card install" data-test="install">
    <div class="card-head"><h3>Install the agent</h3><button class="btn small ghost" onClick=${onClose}>Dismiss</button></div>
    <p>Run this in the cluster <strong>${issued.agentId}</strong> (kubectl pointed at it). The token is shown
      only now and works once, until ${dateTime(issued.token.expiresAt)}.</p>
    <${CopyBox} text=${issued.installCommand} test="install-command" />
  </div>`;
}

export function Access({ cluster, onChanged }) {
  const id = cluster.id;
  const tokens = usePoll(() => get(`/clusters/${id}/tokens`), 15000, [id]);
  const [issued, setIssued] = useState(null);
  const [error, setError] = useState(null);
  const act = async (f) => {
    setError(null);
    try { await f(); } catch (e) { setError(e); }
    tokens.reload();
    onChanged && onChanged();
  };
  const list = (tokens.data && tokens.data.tokens) || [];
  return html`<div class="stack">
    <${ErrorNote} error=${error || tokens.error} />
    <${InstallCommand} issued=${issued} onClose=${() => setIssued(null)} />
    <section class="card">
      <div class="card-head"><h3>Agent credential</h3></div>
      <p class="muted">${cluster.enrolled
        ? html`The agent enrolled its own key; ${cluster.online ? 'it is connected now.' : 'it is not connected (last seen ' + ago(cluster.lastSeen) + ').'}`
        : cluster.revokedAt ? html`Revoked ${ago(cluster.revokedAt)}: no key is accepted until the agent enrolls again with a new token.`
          : 'No agent has enrolled yet.'}</p>
      <div class="actions">
        <${ConfirmButton} test="agent-revoke" label="Revoke agent" confirmLabel="Revoke: cut it off now?"
          onConfirm=${() => act(() => post(`/clusters/${id}/agent/revoke`))} />
        <${ConfirmButton} test="agent-rotate" className="warn" label="Rotate credential" confirmLabel="Rotate: revoke and issue a token?"
          onConfirm=${() => act(async () => setIssued(await post(`/clusters/${id}/agent/rotate`)))} />
      </div>
    </section>
    <section class="card">
      <div class="card-head"><h3>Enrollment tokens</h3>
        <button class="btn primary" data-test="token-create" onClick=${() => act(async () => setIssued(await post(`/clusters/${id}/tokens`)))}>New token</button></div>
      ${list.length === 0
        ? html`<${Empty} title="No enrollment tokens">Create one to install or re-enroll the agent.<//>`
        : html`<table class="table" data-test="tokens">
          <thead><tr><th>Token</th><th>State</th><th>Created</th><th>Expires</th><th>Used</th><th></th></tr></thead>
          <tbody>${list.map((t) => html`<tr key=${t.id} data-test="token-row" data-token-id=${t.id} data-state=${t.state}>
            <td class="mono">#${t.id}</td><td><${Badge} kind=${kStateBadge[t.state]}>${t.state}<//></td>
            <td>${dateTime(t.createdAt)}</td><td>${dateTime(t.expiresAt)}</td><td>${t.usedAt ? ago(t.usedAt) : '—'}</td>
            <td class="right">${t.state === 'active'
              ? html`<${ConfirmButton} test="token-revoke" className="danger small" label="Revoke" confirmLabel="Confirm revoke"
                  onConfirm=${() => act(async () => {
                    await del(`/clusters/${id}/tokens/${t.id}`);
                    if (issued && issued.token.id === t.id) setIssued(null);  // its install command no longer works
                  })} />` : ''}</td></tr>`)}</tbody></table>`}
    </section>
  </div>`;
}

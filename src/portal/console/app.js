// The TensorFusion console: a single page over the portal's REST API. Routes live in the
// URL's hash: #/ (clusters), #/clusters/<id>/<tab>.
import { render } from './vendor/preact.module.js';
import { useState, useEffect } from './vendor/hooks.module.js';
import { html, usePoll, Empty, ErrorNote, Badge } from './ui.js';
import { get, post, setCsrfToken, setUnauthorizedHandler } from './api.js';
import { ago, dateTime } from './format.js';
import { ClusterPage, clusterState } from './cluster.js';
import { InstallCommand } from './access.js';

function useHashRoute() {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const f = () => setHash(location.hash);
    addEventListener('hashchange', f);
    return () => removeEventListener('hashchange', f);
  }, []);
  const parts = hash.replace(/^#\/?/, '').split('/').filter(Boolean);
  return parts;
}

function Login({ onLogin }) {
  const [username, setUsername] = useState('admin');
  const [password, setPassword] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onLogin(await post('/login', { username, password }));
    } catch (err) {
      setError(err.status === 401 ? new Error('Wrong user name or password.') : err);
    } finally { setBusy(false); }
  };
  return html`<div class="login-wrap"><form class="card login" onSubmit=${submit} data-test="login-form">
    <div class="brand big"><img src="/console/icon.svg" alt="" /> TensorFusion</div>
    <p class="muted">Sign in to the console.</p>
    <label>User name<input name="username" autocomplete="username" value=${username} onInput=${(e) => setUsername(e.target.value)} /></label>
    <label>Password<input name="password" type="password" autocomplete="current-password" value=${password}
      onInput=${(e) => setPassword(e.target.value)} autofocus /></label>
    <${ErrorNote} error=${error} />
    <button class="btn primary wide" type="submit" disabled=${busy} data-test="login-submit">${busy ? 'Signing in…' : 'Sign in'}</button>
  </form></div>`;
}

function AddCluster({ onAdded }) {
  const [open, setOpen] = useState(false);
  const [agentId, setAgentId] = useState('');
  const [name, setName] = useState('');
  const [error, setError] = useState(null);
  const [issued, setIssued] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    try {
      setIssued(await post('/clusters', name ? { agentId, name } : { agentId }));
      setOpen(false); setAgentId(''); setName('');
      onAdded();
    } catch (err) { setError(err); }
  };
  return html`<div class="stack">
    <${InstallCommand} issued=${issued} onClose=${() => setIssued(null)} />
    ${open ? html`<form class="card form-row" onSubmit=${submit} data-test="add-cluster-form">
      <label>Agent ID<input placeholder="org:env" value=${agentId} onInput=${(e) => setAgentId(e.target.value)} required /></label>
      <label>Name<input placeholder="(optional)" value=${name} onInput=${(e) => setName(e.target.value)} /></label>
      <div class="actions"><button class="btn primary" type="submit">Create</button>
        <button class="btn ghost" type="button" onClick=${() => setOpen(false)}>Cancel</button></div>
      <${ErrorNote} error=${error} /></form>`
    : html`<div><button class="btn primary" data-test="add-cluster" onClick=${() => setOpen(true)}>Add cluster</button></div>`}
  </div>`;
}

function ClusterList() {
  const { data, error, loading, reload } = usePoll(() => get('/clusters'), 5000);
  const list = (data && data.clusters) || [];
  return html`<div class="page">
    <div class="page-head"><h1>Clusters</h1></div>
    <${ErrorNote} error=${error} />
    <${AddCluster} onAdded=${reload} />
    ${loading && !data ? html`<p class="muted">Loading…</p>`
      : list.length === 0 ? html`<${Empty} title="No clusters yet">Add a cluster to get the command that installs its agent.<//>`
        : html`<section class="card"><table class="table" data-test="clusters">
          <thead><tr><th>Cluster</th><th>State</th><th>Last seen</th><th>Agent version</th><th>Created</th></tr></thead>
          <tbody>${list.map((c) => {
            const [kind, label] = clusterState(c);
            return html`<tr key=${c.id} data-test="cluster-row" data-agent-id=${c.agentId}>
              <td><a class="strong" href=${`#/clusters/${c.id}/overview`}>${c.name}</a><div class="mono small muted">${c.agentId}</div></td>
              <td><${Badge} kind=${kind}>${label}<//></td><td>${ago(c.lastSeen)}</td>
              <td>${c.agentVersion || '—'}</td><td>${dateTime(c.createdAt)}</td></tr>`;
          })}</tbody></table></section>`}
  </div>`;
}

function App() {
  const [me, setMe] = useState(undefined);  // undefined: asking; null: signed out
  const route = useHashRoute();
  useEffect(() => {
    setUnauthorizedHandler(() => setMe(null));
    get('/me').then((m) => { setCsrfToken(m.csrfToken); setMe(m); }).catch(() => setMe(null));
  }, []);
  if (me === undefined) return html`<p class="boot">Loading the console…</p>`;
  if (me === null) return html`<${Login} onLogin=${(m) => { setCsrfToken(m.csrfToken); setMe(m); }} />`;
  const logout = async () => {
    try { await post('/logout'); } finally { setCsrfToken(''); setMe(null); }
  };
  return html`<div class="shell">
    <header class="topbar"><a class="brand" href="#/"><img src="/console/icon.svg" alt="" /> TensorFusion</a>
      <div class="topbar-right"><span class="muted" data-test="user">${me.user}</span>
        <button class="btn small ghost" data-test="logout" onClick=${logout}>Sign out</button></div></header>
    <main>${route[0] === 'clusters' && route[1]
      ? html`<${ClusterPage} key=${route[1]} id=${route[1]} tab=${route[2]} />`
      : html`<${ClusterList} />`}</main>
  </div>`;
}

render(html`<${App} />`, document.getElementById('app'));

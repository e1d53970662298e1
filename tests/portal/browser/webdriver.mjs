// A small W3C WebDriver client (Node's fetch) for Debian's chromedriver driving Debian's
// chromium, headless: no browser download, no npm package. Waits poll a condition, never sleep
// a fixed time.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { existsSync } from 'node:fs';

const kElement = 'element-6066-11e4-a52e-4f735466cecf';

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

// Polls `f` until it returns a truthy value; throws `what` (and the last error) after timeoutMs.
export async function waitFor(what, f, timeoutMs = 60000) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await f();
      if (v) return v;
    } catch (e) { last = e; }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? ' (' + last.message + ')' : ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

export class Browser {
  static async start({ chromium = '/usr/bin/chromium', chromedriver = '/usr/bin/chromedriver', profileDir }) {
    for (const [name, path] of [['chromium', chromium], ['chromedriver', chromedriver]])
      if (!existsSync(path)) throw new Error(`${name} not found at ${path}: run scripts/install-deps.sh`);
    const port = await freePort();
    const driver = spawn(chromedriver, [`--port=${port}`], { stdio: ['ignore', 'ignore', 'inherit'] });
    const b = new Browser(`http://127.0.0.1:${port}`, driver);
    await waitFor('chromedriver to listen', async () => (await b.raw('GET', '/status')).value.ready, 60000);
    const s = await b.raw('POST', '/session', {
      capabilities: {
        alwaysMatch: {
          browserName: 'chrome', acceptInsecureCerts: true, 'goog:loggingPrefs': { browser: 'ALL' },
          'goog:chromeOptions': {
            binary: chromium,
            args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--window-size=1440,1000',
              '--no-first-run', '--disable-extensions', `--user-data-dir=${profileDir}`],
          },
        },
      },
    });
    b.session = s.value.sessionId;
    return b;
  }

  constructor(base, driver) { this.base = base; this.driver = driver; this.session = null; }

  async raw(method, path, body) {
    const res = await fetch(this.base + path, {
      method, headers: { 'Content-Type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await res.json();
    if (!res.ok) throw new Error(`webdriver ${method} ${path}: ${data.value && data.value.message}`);
    return data;
  }

  async cmd(method, path, body) { return (await this.raw(method, `/session/${this.session}${path}`, body)).value; }

  go(url) { return this.cmd('POST', '/url', { url }); }
  // Runs `script` (a function body) in the page; returns its value.
  exec(script, ...args) { return this.cmd('POST', '/execute/sync', { script, args }); }
  async find(css) { return (await this.cmd('POST', '/element', { using: 'css selector', value: css }))[kElement]; }
  async click(css) { await this.cmd('POST', `/element/${await this.find(css)}/click`, {}); }
  async type(css, text) {
    const id = await this.find(css);
    await this.cmd('POST', `/element/${id}/clear`, {});
    await this.cmd('POST', `/element/${id}/value`, { text });
  }
  text(css) { return this.exec('const e = document.querySelector(arguments[0]); return e ? e.textContent : null;', css); }
  count(css) { return this.exec('return document.querySelectorAll(arguments[0]).length;', css); }
  screenshot() { return this.cmd('GET', '/screenshot'); }

  async quit() {
    try { if (this.session) await this.cmd('DELETE', ''); } catch { /* the browser may be gone */ }
    this.driver.kill();
  }
}

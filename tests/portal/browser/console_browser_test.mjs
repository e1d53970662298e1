// The console in a real (headless) Chromium against a portal with a fixture cluster
// (console_fixture): log in (a wrong password first), see the cluster online and its GPUs with
// their vGPUs, cordon a GPU through a command, see the utilization charts with data, create an
// enrollment token (its install command shown) and revoke it, revoke the agent, sign out. Any browser error
// (a script error, a Content-Security-Policy violation) fails the test. Screenshots go to OUT_DIR.
//
//   node console_browser_test.mjs CONSOLE_FIXTURE OUT_DIR
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Browser, waitFor } from './webdriver.mjs';

const [fixturePath, outDir] = process.argv.slice(2);
if (!fixturePath || !outDir) {
  console.error('usage: node console_browser_test.mjs CONSOLE_FIXTURE OUT_DIR');
  process.exit(2);
}
const kPassword = 'browser test password';
const work = mkdtempSync(join(tmpdir(), 'tf-console-browser-'));
rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });

function startFixture() {
  const child = spawn(fixturePath, [join(work, 'portal'), kPassword], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (l) => { const m = /^READY (\d+)$/.exec(l); if (m) resolve(Number(m[1])); });
    child.on('exit', (code) => reject(new Error(`console_fixture exited with ${code} before it was ready`)));
  });
  return { child, port };
}

let step = 0;
async function shot(browser, name) {
  const file = join(outDir, `${String(++step).padStart(2, '0')}-${name}.png`);
  writeFileSync(file, Buffer.from(await browser.screenshot(), 'base64'));
}

const rowSel = (attr, value) => `[${attr}="${value}"]`;

async function run() {
  const fixture = startFixture();
  let browser;
  try {
    const port = await Promise.race([fixture.port, new Promise((_, reject) =>
      setTimeout(() => reject(new Error('console_fixture not ready in 120 s')), 120000).unref())]);
    const origin = `https://localhost:${port}`;
    browser = await Browser.start({ profileDir: join(work, 'profile') });
    const b = browser;

    // Log in: a wrong password is refused with a message, the right one shows the clusters.
    await b.go(origin + '/');
    await waitFor('the login form', () => b.count('[data-test=login-form]'));
    await b.type('input[name=password]', 'not the password');
    await b.click('[data-test=login-submit]');
    await waitFor('the wrong-password message', async () => /Wrong user name or password/.test(await b.text('[role=alert]') || ''));
    await shot(b, 'login-refused');
    await b.type('input[name=password]', kPassword);
    await b.click('[data-test=login-submit]');

    // The cluster list: the enrolled one online with its agent's version, the other awaiting its agent.
    const prod = rowSel('data-agent-id', 'acme:prod'), staging = rowSel('data-agent-id', 'acme:staging');
    await waitFor('acme:prod online', async () => /online/.test(await b.text(prod) || ''));
    if (!/test-0\.1/.test(await b.text(prod))) throw new Error('the agent version is not shown');
    if (!/awaiting agent/.test(await b.text(staging) || '')) throw new Error('acme:staging is not shown as awaiting its agent');
    await shot(b, 'clusters');

    // The cluster: overview counts, GPUs with their vGPUs.
    await b.click(`${prod} a`);
    await waitFor('the GPU count', async () => (await b.text('[data-test=stat-gpus] .stat-value')) === '4');
    await shot(b, 'overview');
    await b.click('[data-test=tab-gpus]');
    await waitFor('four GPU rows', async () => (await b.count('[data-test=gpu-row]')) === 4);
    if (!/ml\/llm-serve-0/.test(await b.text(rowSel('data-gpu', 'gpu-0')))) throw new Error('gpu-0 does not list its vGPU llm-serve-0');
    if (!/none/.test(await b.text(rowSel('data-gpu', 'gpu-3')))) throw new Error('gpu-3 should have no vGPU');

    // A command: cordon gpu-1; the agent runs it and the mirrored label shows.
    await b.click(`${rowSel('data-gpu', 'gpu-1')} [data-test=cordon]`);
    await waitFor('the cordon command done', async () => /^done/.test(await b.text(`${rowSel('data-gpu', 'gpu-1')} [data-test=command-state]`) || ''));
    await waitFor('gpu-1 shown cordoned (the mirrored label)', async () =>
      (await b.count(`${rowSel('data-gpu', 'gpu-1')} [data-test=cordoned]`)) === 1 &&
      (await b.text(`${rowSel('data-gpu', 'gpu-1')} [data-test=cordon]`)) === 'Uncordon');
    if ((await b.count('[data-test=cordoned]')) !== 1) throw new Error('a GPU other than gpu-1 shows cordoned');
    await shot(b, 'gpus');

    await b.click('[data-test=tab-workloads]');
    await waitFor('the workloads and where they run', async () => /node-b/.test(await b.text('[data-test=workloads]') || ''));
    await shot(b, 'workloads');

    // Charts with data: uPlot drew a canvas for each measure, fed by the back-filled points.
    await b.click('[data-test=tab-utilization]');
    // Four GPU measures (4 GPUs) and two per vGPU pod (3 pods), 50 back-filled samples each.
    await waitFor('six charts with data', () => b.exec(`
      const charts = [...document.querySelectorAll('[data-test=chart]')];
      const pods = charts.filter((c) => c.dataset.measure.startsWith('vgpu.'));
      return charts.length === 6 && pods.length === 2 &&
        charts.every((c) => Number(c.dataset.points) >= (c.dataset.measure.startsWith('vgpu.') ? 3 : 4) * 50 && c.querySelector('canvas'));`));
    await shot(b, 'utilization');

    // Tokens: the used one; create one (the install command shows it), then revoke it.
    await b.click('[data-test=tab-access]');
    await waitFor('the used token', async () => (await b.count('[data-test=token-row][data-state=used]')) === 1);
    await b.click('[data-test=token-create]');
    await waitFor('the install command', async () => /ENROLL_TOKEN=[A-Za-z0-9_-]{20,}/.test(await b.text('[data-test=install-command]') || ''));
    await waitFor('an active token', async () => (await b.count('[data-test=token-row][data-state=active]')) === 1);
    await shot(b, 'token-created');
    await b.click('[data-test=token-row][data-state=active] [data-test=token-revoke]');
    await b.click('[data-test=token-row][data-state=active] [data-test=token-revoke]');  // confirm
    await waitFor('the token revoked', async () =>
      (await b.count('[data-test=token-row][data-state=revoked]')) === 1 && (await b.count('[data-test=token-row][data-state=active]')) === 0);
    if (await b.count('[data-test=install]')) throw new Error('the revoked token\'s install command is still shown');
    await shot(b, 'token-revoked');

    // Revoking the agent cuts it off: the cluster shows revoked (no key, offline).
    await b.click('[data-test=agent-revoke]');
    await b.click('[data-test=agent-revoke]');  // confirm
    await waitFor('the cluster shown revoked', async () => (await b.text('[data-test=cluster-state]')) === 'revoked');
    await shot(b, 'agent-revoked');

    // Nothing went wrong in the page: no script error, no policy violation. The two 401s this
    // test caused (asking who is signed in before logging in, the wrong password) are expected.
    const expected = /\/api\/v1\/(me|login) - Failed to load resource: the server responded with a status of 401/;
    const logs = await b.cmd('POST', '/se/log', { type: 'browser' });
    const severe = logs.filter((l) => l.level === 'SEVERE' && !expected.test(l.message));
    if (severe.length) throw new Error('browser errors: ' + severe.map((l) => l.message).join(' | '));

    await b.click('[data-test=logout]');
    await waitFor('the login form after signing out', () => b.count('[data-test=login-form]'));
    await b.go(origin + '/');
    await waitFor('the login form after a reload (the session is gone)', () => b.count('[data-test=login-form]'));
  } catch (e) {
    if (browser) await shot(browser, 'failure').catch(() => {});
    throw e;
  } finally {
    if (browser) await browser.quit();
    fixture.child.stdin.end();
    fixture.child.kill();
  }
}

run().then(() => {
  rmSync(work, { recursive: true, force: true });
  console.log(`PASS console in Chromium (${step} screenshots in ${outDir})`);
}, (e) => {
  console.error(`FAIL ${e.message}`);
  process.exit(1);
});

// Headless-Chromium test of the admin UI (run by scripts/ui-test.sh against the dev server,
// or any node: SHOAL_UI_URL, SHOAL_UI_TOKEN). Each page loads, one action per page is done
// and checked through the REST API, and a screenshot per page is written to SHOAL_UI_SHOTS.
import { createRequire } from 'node:module';
import { mkdirSync, readFileSync } from 'node:fs';

const require = createRequire(`${process.env.PW_PREFIX || process.cwd()}/node_modules/`);
const { chromium } = require('playwright-core');

const base = process.env.SHOAL_UI_URL || 'http://127.0.0.1:19395';
const token = process.env.SHOAL_UI_TOKEN || 'ui-admin-token-0123456789';
const shots = process.env.SHOAL_UI_SHOTS || 'target/ui-screenshots';
mkdirSync(shots, { recursive: true });

const api = async (method, path) => {
  const res = await fetch(base + path, { method, headers: { Authorization: `Bearer ${token}` } });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.status === 204 ? null : res.json();
};
const assert = (cond, msg) => { if (!cond) throw new Error(msg); };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 950 } });
const pageErrors = [];
page.on('pageerror', (e) => pageErrors.push(e.message));
page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(m.text()); });
page.on('dialog', (d) => d.accept());
page.setDefaultTimeout(10000);

let passed = 0, failed = 0;
async function test(name, fn) {
  const before = pageErrors.length;
  try {
    await fn();
    assert(pageErrors.length === before, `errors in the page: ${pageErrors.slice(before).join('; ')}`);
    passed++; console.log(`ok   ${name}`);
  } catch (e) {
    failed++; console.log(`FAIL ${name}: ${e.message}`);
    await page.screenshot({ path: `${shots}/FAILED-${name}.png`, fullPage: true }).catch(() => {});
  }
}

await test('cluster', async () => {
  await page.goto(`${base}/ui/#/cluster`);
  await page.fill('#token-input', token);
  await page.click('#token-form button[type=submit]');
  await page.waitForSelector('#members tbody tr >> nth=2');
  assert((await page.locator('#members tbody tr').count()) === 3, 'three members');
  await page.waitForFunction(() => document.getElementById('node-name').textContent.includes('node1'));
  await api('POST', '/api/v1/plugins/checksum/reload');
  await page.waitForSelector('#events li:has-text("checksum reloaded")');
  await page.screenshot({ path: `${shots}/cluster.png`, fullPage: true });
});

await test('sessions', async () => {
  await page.goto(`${base}/ui/#/sessions`);
  await page.waitForSelector('#session-list tbody tr >> nth=24');
  const before = (await api('GET', '/api/v1/contexts/app/sessions')).total;
  assert((await page.textContent('#page-info')).includes(`of ${before}`), 'page info shows the total');
  const id = await page.locator('#session-list tbody tr').first().getAttribute('data-id');
  await page.locator('#session-list tbody tr').first().click();
  await page.waitForSelector('#session-detail table');
  await page.screenshot({ path: `${shots}/sessions.png`, fullPage: true });
  await page.click('#expire-one');
  await page.waitForFunction((n) => document.getElementById('page-info')?.textContent.includes(`of ${n}`), before - 1);
  const gone = await fetch(`${base}/api/v1/contexts/app/sessions/${id}`, { headers: { Authorization: `Bearer ${token}` } });
  assert(gone.status === 404, `expired session still there (${gone.status})`);
  await page.fill('#prefix', id.slice(0, 1));
  await page.click('form.row button[type=submit]');
  await page.waitForFunction((p) => [...document.querySelectorAll('#session-list tbody tr')].every((tr) => tr.dataset.id.startsWith(p)), id.slice(0, 1));
  // The persistent context shows its store: kind, role, state, and sessions in memory vs stored.
  const cart = await api('GET', '/api/v1/contexts/cart/stats');
  assert(cart.store && cart.store.role === 'persistent', `cart has a persistent store: ${JSON.stringify(cart)}`);
  await page.selectOption('#ctx', 'cart');
  await page.waitForSelector('#store-status:has-text("persistent manager")');
  const text = await page.textContent('#store-status');
  assert(text.includes(cart.store.describe), `the store's place is shown: ${text}`);
  assert(text.includes('in memory here') && text.includes('in the store'), `memory vs store: ${text}`);
  assert((await page.locator('#store-status .badge.ok').count()) === 1, `the store is ok: ${text}`);
  assert((await page.textContent('#ctx')).includes('persistent'), 'the context list names the persistent manager');
  await page.screenshot({ path: `${shots}/sessions-store.png`, fullPage: true });
});

await test('traffic', async () => {
  await page.goto(`${base}/ui/#/traffic`);
  await page.waitForSelector('#legend span >> nth=1');
  // Wait until both charts have drawn lines (coloured pixels, not only grey grid).
  await page.waitForFunction(() => ['chart-messages', 'chart-bytes'].every((id) => {
    const c = document.getElementById(id);
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let coloured = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 200 && Math.abs(d[i] - d[i + 2]) > 80) coloured++;
    return coloured > 60;
  }), null, { timeout: 15000 });
  assert((await page.locator('#stack tbody tr').count()) >= 5, 'interceptor stack listed');
  await page.screenshot({ path: `${shots}/traffic.png`, fullPage: true });
});

await test('plugins', async () => {
  await page.goto(`${base}/ui/#/plugins`);
  const row = 'tr[data-plugin="url-filter"]';
  await page.click(`${row} button[data-action=disable]`);
  await page.waitForSelector(`${row} td.state:has-text("disabled")`);
  assert((await api('GET', '/api/v1/plugins/url-filter')).state === 'disabled', 'API shows url-filter disabled');
  // A real node compiles what it loads: SHOAL_UI_COMPONENT names a real component then.
  const component = process.env.SHOAL_UI_COMPONENT
    ? readFileSync(process.env.SHOAL_UI_COMPONENT)
    : Buffer.concat([Buffer.from([0, 0x61, 0x73, 0x6d, 0x0d, 0, 1, 0]), Buffer.alloc(4096)]);
  await page.setInputFiles('#plugin-file', { name: 'audit.wasm', mimeType: 'application/wasm', buffer: component });
  await page.fill('#plugin-name', 'audit');
  await page.selectOption('#plugin-world', 'channel-interceptor');
  await page.selectOption('#plugin-attach', 'channel');
  await page.click('#plugin-upload button[type=submit]');
  await page.waitForSelector('tr[data-plugin="audit"]');
  assert((await api('GET', '/api/v1/plugins/audit')).size_bytes === component.length, 'uploaded size');
  await page.screenshot({ path: `${shots}/plugins.png`, fullPage: true });
});

await test('deployments', async () => {
  await page.goto(`${base}/ui/#/deployments`);
  await page.waitForSelector('#deploy-form');
  // Every node state the page shows while deploys run (live progress is polled).
  await page.evaluate(() => {
    window.seenStates = new Set();
    new MutationObserver(() => {
      for (const el of document.querySelectorAll('#deployments .node-state')) window.seenStates.add(el.dataset.state);
    }).observe(document.getElementById('deployments'), { childList: true, subtree: true });
  });
  // The form deploys a plugin: a real node test-loads it, so SHOAL_UI_ARTIFACT names a real
  // component; the fake cluster gets a file.
  const real = process.env.SHOAL_UI_ARTIFACT;
  const artifact = real ? readFileSync(real) : Buffer.alloc(3 * 1024 * 1024, 7);
  const name = real ? 'shop.wasm' : 'shop.war';
  await page.selectOption('#deploy-kind', real ? 'plugin' : 'file');
  await page.setInputFiles('#deploy-file', { name, mimeType: 'application/octet-stream', buffer: artifact });
  await page.click('#deploy-form button[type=submit]');
  await page.waitForSelector(`tr[data-deployment="${name}"]`);
  await page.waitForFunction(() => document.getElementById('deploy-pct').textContent === 'done');
  const p = await page.$eval('#deploy-progress', (el) => [el.value, el.max]);
  assert(p[0] === p[1] && p[1] === artifact.length, `progress ended at ${p}`);
  const d = await api('GET', `/api/v1/deployments/${name}`);
  assert(d.nodes.length === 3 && d.nodes.every((n) => n.state === 'active'), `active on the three nodes: ${JSON.stringify(d.nodes)}`);
  // One row per node, each `active`, named as the API names them.
  const row = `tr[data-deployment="${name}"] .node-state`;
  await page.waitForFunction((sel) => [...document.querySelectorAll(sel)].filter((el) => el.dataset.state === 'active').length === 3, row);
  const shown = await page.$$eval(row, (els) => els.map((el) => el.dataset.node).sort());
  assert(JSON.stringify(shown) === JSON.stringify(d.nodes.map((n) => n.node).sort()), `node rows ${shown}`);
  await page.screenshot({ path: `${shots}/deployments.png`, fullPage: true });

  // A component no node can load: the nodes that checked it say `failed: <reason>` (a real
  // coordinator checks its own copy first, so the others show `cancelled`); nothing active.
  await page.selectOption('#deploy-kind', 'plugin');
  await page.setInputFiles('#deploy-file', { name: 'broken.wasm', mimeType: 'application/wasm', buffer: Buffer.from('not a component at all') });
  await page.click('#deploy-form button[type=submit]');
  await page.waitForFunction(() => document.getElementById('deploy-pct').textContent === 'failed');
  const aborted = 'tr[data-deployment="broken.wasm"][data-rollout="aborted"] .node-state';
  await page.waitForFunction((sel) => document.querySelectorAll(sel).length === 3, aborted);
  const states = await page.$$eval(aborted, (els) => els.map((el) => el.dataset.state));
  assert(states.includes('failed') && states.every((s) => s === 'failed' || s === 'cancelled'), `node states: ${states}`);
  const reasons = await page.$$eval(`${aborted}[data-state="failed"] .node-text`, (els) => els.map((el) => el.textContent));
  assert(reasons.every((t) => t.startsWith('failed: ') && t.includes('not a loadable plugin component')), `failure rows: ${reasons.join(' | ')}`);
  const rollouts = await api('GET', '/api/v1/rollouts');
  const broken = rollouts.find((r) => r.name === 'broken.wasm');
  assert(broken && broken.outcome === 'aborted' && broken.nodes.length === 3, `rollout of broken.wasm: ${JSON.stringify(broken)}`);
  const gone = await fetch(`${base}/api/v1/deployments/broken.wasm`, { headers: { Authorization: `Bearer ${token}` } });
  assert(gone.status === 404, `nothing of broken.wasm is deployed (${gone.status})`);
  const seen = await page.evaluate(() => [...window.seenStates]);
  console.log(`     node states shown during the deploys: ${seen.join(', ')}`);
  assert(seen.includes('failed') && seen.includes('active'), `states shown: ${seen}`);
  await page.screenshot({ path: `${shots}/deployments-failed.png`, fullPage: true });
  // The failed deploy's 422 is logged by Chromium as a failed resource load.
  for (let i = pageErrors.length - 1; i >= 0; i--) if (pageErrors[i].includes('status of 422')) pageErrors.splice(i, 1);
});

await test('api-docs', async () => {
  await page.goto(`${base}/api/docs`);
  await page.waitForSelector('details.panel >> nth=30');
  await page.locator('details#list_sessions summary').click();
  await page.screenshot({ path: `${shots}/api-docs.png`, fullPage: false });
});

// Last: a drained node takes no new sessions (the dev server only records the drain).
await test('drain', async () => {
  await page.goto(`${base}/ui/#/cluster`);
  await page.waitForSelector('#drain-node:not([disabled])');
  await page.click('#drain-node'); // the confirm dialog is accepted
  await page.waitForSelector('#drain-state:has-text("draining")');
  assert(await page.locator('#drain-node').isDisabled(), 'drain button disabled while draining');
  assert((await api('GET', '/api/v1/cluster/drain')).draining === true, 'API shows the node draining');
  await page.screenshot({ path: `${shots}/drain.png`, fullPage: true });
  // Readiness now answers its 503 `draining`, which Chromium logs as a failed resource load.
  for (let i = pageErrors.length - 1; i >= 0; i--) if (pageErrors[i].includes('status of 503')) pageErrors.splice(i, 1);
});

await browser.close();
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);

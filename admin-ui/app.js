// Entry point: token handling and the hash router (#/cluster, #/sessions, ...). Each page
// module exports render(main) returning an optional cleanup function (timers, streams).

import { api, setToken, token, toast } from './core.js';
import * as cluster from './cluster.js';
import * as sessions from './sessions.js';
import * as traffic from './traffic.js';
import * as plugins from './plugins.js';
import * as deployments from './deployments.js';

const pages = { cluster, sessions, traffic, plugins, deployments };
let cleanup = null;

async function show() {
  const name = (location.hash.match(/^#\/(\w+)/) || [])[1] || 'cluster';
  const page = pages[name] || cluster;
  for (const a of document.querySelectorAll('#nav a[data-page]')) a.classList.toggle('active', a.dataset.page === name);
  if (cleanup) { cleanup(); cleanup = null; }
  const main = document.getElementById('main');
  main.replaceChildren();
  main.dataset.page = name;
  if (!token()) {
    main.append(Object.assign(document.createElement('p'), { className: 'hint', textContent: 'Type the node\'s admin token (or the read-only one) above. It is kept in this tab only (sessionStorage).' }));
    return;
  }
  try {
    cleanup = (await page.render(main)) || null;
  } catch (e) {
    toast(e.message, true);
  }
}

async function refreshTokenBar() {
  const has = !!token();
  document.getElementById('token-form').hidden = has;
  document.getElementById('token-status').hidden = !has;
  if (has) {
    try {
      const local = await api('GET', '/api/v1/cluster/local');
      document.getElementById('node-name').textContent = `${local.member.name} · shoal ${local.version}`;
    } catch (e) { document.getElementById('node-name').textContent = ''; }
  }
}

document.getElementById('token-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = document.getElementById('token-input');
  setToken(input.value.trim());
  input.value = '';
  refreshTokenBar();
  show();
});
document.getElementById('token-forget').addEventListener('click', () => { setToken(null); refreshTokenBar(); show(); });
window.addEventListener('shoal-unauthorized', () => {
  toast('The token was refused (401): type it again.', true);
  setToken(null);
  refreshTokenBar();
});
window.addEventListener('hashchange', show);
refreshTokenBar();
show();

// Cluster page: local node, health and readiness, members, live events, and draining this
// node for a rolling deploy (the same drain as SIGTERM; the node exits when it is done).

import { act, api, badge, fmtAgo, fmtTime, followEvents, h, table } from './core.js';

async function probes() {
  // Probes answer 503 with a body when not ready: read them without the error path.
  const get = async (p) => (await fetch(p)).json();
  return Promise.all([get('/api/v1/health'), get('/api/v1/ready')]);
}

function membersTable(members) {
  return table(['Name', 'State', 'Address', 'Since', 'Reason', 'Id'], members.map((m) => h('tr', { dataset: { member: m.name } },
    h('td', {}, m.name, m.local ? h('span', { class: 'muted' }, ' (this node)') : ''),
    h('td', {}, badge(m.state)),
    h('td', { class: 'mono' }, m.address),
    h('td', { title: m.since }, fmtAgo(m.since_ms)),
    h('td', {}, m.reason || ''),
    h('td', { class: 'mono muted' }, m.id.slice(0, 12)))));
}

/** The drain state and the button that starts it (confirmed: the node goes away). */
function drainBox(drain, onDrain) {
  const button = h('button', { id: 'drain-node', class: 'danger', disabled: drain.draining, onclick: async () => {
    if (!confirm(`Drain ${drain.node}? It stops taking new sessions, tells the balancers, hands its sessions over and exits.`)) return;
    if (await act(`${drain.node} is draining`, () => api('POST', '/api/v1/cluster/drain'))) onDrain();
  } }, 'Drain this node');
  const state = drain.draining
    ? h('span', {}, badge('draining'), ' ', `${drain.phase}: ${drain.detail}`)
    : h('span', { class: 'muted' }, 'serving');
  return h('div', { class: 'kv' }, h('span', {}, 'drain'), h('span', { id: 'drain-state' }, state, ' ', button));
}

export async function render(main) {
  const membersBox = h('div', { id: 'members' });
  const probesBox = h('div', { id: 'probes' });
  const drainArea = h('div', { id: 'drain' });
  const events = h('ul', { id: 'events' });
  main.append(h('h2', {}, 'Cluster'), h('div', { class: 'grid' },
    h('section', { class: 'panel' }, h('h3', {}, 'Members'), membersBox),
    h('section', { class: 'panel' }, h('h3', {}, 'Health'), probesBox, drainArea, h('h3', {}, 'Live events'), events)));

  const refresh = async () => {
    const [members, [health, ready], drain] = await Promise.all([
      api('GET', '/api/v1/cluster/members'), probes(), api('GET', '/api/v1/cluster/drain')]);
    membersBox.replaceChildren(membersTable(members));
    drainArea.replaceChildren(drainBox(drain, () => refresh().catch(() => {})));
    probesBox.replaceChildren(h('div', { class: 'kv' },
      h('span', {}, 'health'), h('span', {}, badge(health.status), ' ', health.checks.map((c) => `${c.name}: ${c.detail}`).join(' · ')),
      h('span', {}, 'ready'), h('span', {}, badge(ready.ready ? 'ok' : ready.status === 'draining' ? 'draining' : 'bad'), ' ', ready.checks.map((c) => c.detail).join(' · '))));
  };
  await refresh();

  const addEvent = (e) => {
    events.prepend(h('li', { dataset: { kind: e.kind } }, h('time', {}, fmtTime(e.at_ms)), badge(e.kind), ' ', e.message));
    while (events.children.length > 100) events.lastChild.remove();
  };
  for (const e of await api('GET', '/api/v1/events/recent?limit=20')) addEvent(e);
  const stop = followEvents((e) => {
    addEvent(e);
    if (e.kind.startsWith('member') || e.kind === 'drain') refresh().catch(() => {});
  });
  const timer = setInterval(() => refresh().catch(() => {}), 10000);
  return () => { stop(); clearInterval(timer); };
}

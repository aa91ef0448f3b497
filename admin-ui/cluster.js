// Cluster page: local node, health and readiness, members, live events.

import { api, badge, fmtAgo, fmtTime, followEvents, h, table } from './core.js';

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

export async function render(main) {
  const membersBox = h('div', { id: 'members' });
  const probesBox = h('div', { id: 'probes' });
  const events = h('ul', { id: 'events' });
  main.append(h('h2', {}, 'Cluster'), h('div', { class: 'grid' },
    h('section', { class: 'panel' }, h('h3', {}, 'Members'), membersBox),
    h('section', { class: 'panel' }, h('h3', {}, 'Health'), probesBox, h('h3', {}, 'Live events'), events)));

  const refresh = async () => {
    const [members, [health, ready]] = await Promise.all([api('GET', '/api/v1/cluster/members'), probes()]);
    membersBox.replaceChildren(membersTable(members));
    probesBox.replaceChildren(h('div', { class: 'kv' },
      h('span', {}, 'health'), h('span', {}, badge(health.status), ' ', health.checks.map((c) => `${c.name}: ${c.detail}`).join(' · ')),
      h('span', {}, 'ready'), h('span', {}, badge(ready.ready ? 'ok' : 'bad'), ' ', ready.checks.map((c) => c.detail).join(' · '))));
  };
  await refresh();

  const addEvent = (e) => {
    events.prepend(h('li', { dataset: { kind: e.kind } }, h('time', {}, fmtTime(e.at_ms)), badge(e.kind), ' ', e.message));
    while (events.children.length > 100) events.lastChild.remove();
  };
  for (const e of await api('GET', '/api/v1/events/recent?limit=20')) addEvent(e);
  const stop = followEvents((e) => {
    addEvent(e);
    if (e.kind.startsWith('member')) refresh().catch(() => {});
  });
  const timer = setInterval(() => refresh().catch(() => {}), 10000);
  return () => { stop(); clearInterval(timer); };
}

// Sessions page: pick a context, search (id prefix, node, idle), page, inspect, expire.

import { act, api, badge, fmtAgo, fmtBytes, h, table } from './core.js';

const PAGE = 25;

const fmtUs = (us) => us >= 10000 ? `${Math.round(us / 1000)} ms` : `${us} µs`;

// The context's session store as its stats show it: state (and why it is down), queue, lag,
// latency, conflicts, and for a persistent context the sessions in memory vs in the store.
function storeView(context, st) {
  if (!st) return h('div', { class: 'muted' }, `${context.path}: no session store (sessions live in the members' memory).`);
  const role = st.role === 'persistent' ? 'persistent manager' : 'write-behind';
  const kv = [
    'store', h('span', { class: 'mono' }, `${st.name} — ${st.describe}`),
    'role', role,
    'state', h('span', {}, badge(st.degraded ? 'degraded' : 'ok'), st.degraded ? ` ${st.degraded}` : ''),
    'queue', `${st.queue_depth} sessions${st.queue_bytes ? ` (${fmtBytes(st.queue_bytes)})` : ''}, lag ${st.queue_lag_ms} ms${st.queue_full ? `, full ${st.queue_full}×` : ''}`,
    'latency', `avg ${fmtUs(st.latency_avg_us)}, max ${fmtUs(st.latency_max_us)} (${st.ops_timed} ops)`,
    'conflicts', String(st.conflicts), 'errors', String(st.errors),
    'saves / loads', `${st.saves} / ${st.loads}`,
  ];
  if (st.in_memory !== null && st.in_memory !== undefined) kv.push('in memory here', String(st.in_memory));
  kv.push('in the store', st.stored === null || st.stored === undefined ? '— (no answer)' : String(st.stored));
  if (st.last_error && !st.degraded) kv.push('last error', st.last_error);
  return h('div', { class: 'kv' }, kv.map((v) => h('span', {}, v)));
}

function attributeView(a) {
  const views = [];
  if (a.json !== null && typeof a.json === 'object') views.push(h('div', {}, h('span', { class: 'muted' }, 'JSON'), h('pre', {}, JSON.stringify(a.json, null, 2))));
  if (a.text !== null) views.push(h('div', {}, h('span', { class: 'muted' }, 'text'), h('pre', {}, a.text)));
  views.push(h('details', { open: a.text === null }, h('summary', { class: 'muted' }, `hex${a.truncated ? ' (first 4 KiB)' : ''}`), h('pre', {}, a.hex.replace(/(.{2})/g, '$1 ').trim())));
  return h('tr', {}, h('td', { class: 'mono' }, a.name), h('td', {}, fmtBytes(a.size_bytes)), h('td', {}, views));
}

export async function render(main) {
  const contexts = await api('GET', '/api/v1/contexts');
  const counts = await api('GET', '/api/v1/sessions/counts');
  const state = { context: contexts[0]?.name, offset: 0 };
  const ctxSelect = h('select', { id: 'ctx' }, contexts.map((c) => h('option', { value: c.name }, `${c.path} (${c.manager}, ${c.replication})`)));
  const prefix = h('input', { id: 'prefix', placeholder: 'id prefix', size: 14 });
  const node = h('input', { id: 'node', placeholder: 'node', size: 8 });
  const idle = h('input', { id: 'idle', placeholder: 'idle ≥ s', size: 7, type: 'number', min: 0 });
  const list = h('div', { id: 'session-list' });
  const detail = h('div', { id: 'session-detail', class: 'muted' }, 'Select a session.');
  const countsBox = h('div', { id: 'counts' });
  const storeBox = h('div', { id: 'store-status' });
  const showStore = async () => {
    const name = state.context;
    const stats = await api('GET', `/api/v1/contexts/${encodeURIComponent(name)}/stats`);
    if (name !== state.context) return;
    storeBox.replaceChildren(storeView(contexts.find((c) => c.name === name), stats.store));
  };

  const load = async () => {
    const q = new URLSearchParams({ limit: PAGE, offset: state.offset });
    if (prefix.value) q.set('prefix', prefix.value.trim());
    if (node.value) q.set('node', node.value.trim());
    if (idle.value) q.set('min_idle_secs', idle.value);
    const page = await api('GET', `/api/v1/contexts/${encodeURIComponent(state.context)}/sessions?${q}`);
    const rows = page.items.map((s) => h('tr', { class: 'clickable', dataset: { id: s.id }, onclick: () => inspect(s.id) },
      h('td', { class: 'mono' }, s.id), h('td', {}, s.primary), h('td', {}, s.backups.join(', ')),
      h('td', {}, fmtAgo(s.last_access_ms)), h('td', {}, s.attribute_count), h('td', {}, fmtBytes(s.size_bytes))));
    const last = Math.min(page.offset + page.items.length, page.total);
    list.replaceChildren(table(['Id', 'Primary', 'Backups', 'Last access', 'Attrs', 'Size'], rows),
      h('div', { class: 'row' },
        h('button', { disabled: state.offset === 0, onclick: () => { state.offset = Math.max(0, state.offset - PAGE); load(); } }, '← Prev'),
        h('span', { id: 'page-info' }, page.total ? `${page.offset + 1}–${last} of ${page.total}` : 'no session matches'),
        h('button', { disabled: last >= page.total, onclick: () => { state.offset += PAGE; load(); } }, 'Next →')));
  };

  const inspect = async (id) => {
    for (const tr of list.querySelectorAll('tr.selected')) tr.classList.remove('selected');
    list.querySelector(`tr[data-id="${CSS.escape(id)}"]`)?.classList.add('selected');
    const s = await api('GET', `/api/v1/contexts/${encodeURIComponent(state.context)}/sessions/${encodeURIComponent(id)}`);
    const x = s.session;
    detail.className = '';
    detail.replaceChildren(
      h('div', { class: 'kv' },
        h('span', {}, 'id'), h('span', { class: 'mono' }, x.id),
        h('span', {}, 'primary'), h('span', {}, x.primary), h('span', {}, 'backups'), h('span', {}, x.backups.join(', ')),
        h('span', {}, 'idle'), h('span', {}, `${Math.round(x.idle_ms / 1000)} s of ${x.max_inactive_secs} s`),
        h('span', {}, 'version'), h('span', {}, x.version), h('span', {}, 'principal'), h('span', {}, x.principal || '—')),
      h('div', { class: 'row' }, h('button', { id: 'expire-one', class: 'danger', onclick: async () => {
        if (await act(`session ${x.id} expired`, () => api('DELETE', `/api/v1/contexts/${encodeURIComponent(state.context)}/sessions/${encodeURIComponent(x.id)}`))) {
          detail.replaceChildren('Expired.');
          load();
        }
      } }, 'Expire session')),
      table(['Attribute', 'Size', 'Value'], s.attributes.map(attributeView)));
  };

  ctxSelect.addEventListener('change', () => { state.context = ctxSelect.value; state.offset = 0; load(); showStore(); });
  const search = h('form', { class: 'row', onsubmit: (e) => { e.preventDefault(); state.offset = 0; load(); } },
    ctxSelect, prefix, node, idle, h('button', { type: 'submit', class: 'primary' }, 'Search'),
    h('button', { type: 'button', class: 'danger', id: 'expire-all', onclick: async () => {
      if (!confirm(`Expire every session of ${state.context}?`)) return;
      await act('sessions expired', async () => { const r = await api('DELETE', `/api/v1/contexts/${encodeURIComponent(state.context)}/sessions`); return r; });
      load();
    } }, 'Expire all'));
  // A persistent context has no backups: its "primaries" are the sessions a node holds in
  // memory (the store holds them all).
  const persistent = new Set(contexts.filter((c) => c.manager === 'persistent').map((c) => c.name));
  countsBox.replaceChildren(table(['Node', 'Context', 'Primary', 'Backup'], counts.map((c) => h('tr', {}, h('td', {}, c.node), h('td', {}, c.context),
    h('td', {}, persistent.has(c.context) ? `${c.primary} in memory` : c.primary), h('td', {}, persistent.has(c.context) ? '— (in the store)' : c.backup)))));
  main.append(h('h2', {}, 'Sessions'), search,
    h('h3', {}, 'Session store'), h('section', { class: 'panel' }, storeBox),
    h('div', { class: 'grid' }, h('section', { class: 'panel' }, list), h('section', { class: 'panel' }, detail)),
    h('h3', {}, 'Sessions per node'), h('section', { class: 'panel' }, countsBox));
  await Promise.all([load(), showStore()]);
}

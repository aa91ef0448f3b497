// Plugins & pipelines page: plugins with actions (applied on every node), component upload,
// each context's pipeline and the channel's interceptor stack, reorderable.

import { act, api, badge, fmtBytes, h, table, toast, upload } from './core.js';

const enc = encodeURIComponent;

function moved(names, i, delta) {
  const out = [...names];
  const j = i + delta;
  if (j < 0 || j >= out.length) return null;
  [out[i], out[j]] = [out[j], out[i]];
  return out;
}

function stageList(names, labels, onOrder) {
  return h('ol', { class: 'stages' }, names.map((n, i) => h('li', { dataset: { stage: n } }, labels[i],
    h('button', { title: 'move up', disabled: i === 0, onclick: () => onOrder(moved(names, i, -1)) }, '↑'),
    h('button', { title: 'move down', disabled: i === names.length - 1, onclick: () => onOrder(moved(names, i, 1)) }, '↓'))));
}

function uploadForm(contexts, reload) {
  const file = h('input', { type: 'file', id: 'plugin-file', accept: '.wasm', required: true });
  const name = h('input', { id: 'plugin-name', placeholder: 'name', required: true, pattern: '[A-Za-z0-9._\\-]{1,64}' });
  const world = h('select', { id: 'plugin-world' }, ['valve', 'url-filter', 'channel-interceptor', 'deploy-hook'].map((w) => h('option', {}, w)));
  const attach = h('select', { id: 'plugin-attach' }, h('option', { value: '' }, '(not attached)'), h('option', { value: 'channel' }, 'channel'), contexts.map((c) => h('option', { value: c.name }, c.path)));
  const config = h('input', { id: 'plugin-config', placeholder: 'config JSON, e.g. {"limit": 10}', size: 30 });
  const replace = h('input', { type: 'checkbox', id: 'plugin-replace' });
  const progress = h('progress', { max: 1, value: 0, hidden: true });
  return h('form', { class: 'row', id: 'plugin-upload', onsubmit: async (e) => {
    e.preventDefault();
    const f = file.files[0];
    if (!f) return;
    const q = new URLSearchParams({ name: name.value || f.name.replace(/\.wasm$/, ''), world: world.value, replace: replace.checked });
    if (attach.value) q.set('attach', attach.value);
    if (config.value.trim()) q.set('config', config.value.trim());
    progress.hidden = false;
    try {
      const p = await upload('POST', `/api/v1/plugins?${q}`, f, (done, total) => { progress.max = total; progress.value = done; });
      toast(`plugin ${p.name} loaded on every node`);
      reload();
    } catch (err) { toast(err.message, true); } finally { progress.hidden = true; }
  } }, file, name, world, attach, config, h('label', {}, replace, ' replace'), h('button', { type: 'submit', class: 'primary' }, 'Load'), progress);
}

export async function render(main) {
  const box = h('div');
  main.append(h('h2', {}, 'Plugins & pipelines'), box);
  const reload = async () => {
    const [plugins, contexts, channel] = await Promise.all([api('GET', '/api/v1/plugins'), api('GET', '/api/v1/contexts'), api('GET', '/api/v1/channel')]);
    const action = (p, verb, method = 'POST') => h('button', { class: verb === 'unload' ? 'danger' : '', dataset: { action: verb }, onclick: async () => {
      if (verb === 'unload' && !confirm(`Unload ${p.name} from every node?`)) return;
      const path = verb === 'unload' ? `/api/v1/plugins/${enc(p.name)}` : `/api/v1/plugins/${enc(p.name)}/${verb}`;
      await act(`${p.name}: ${verb} applied on every node`, () => api(method, path));
      reload();
    } }, verb);
    const rows = plugins.map((p) => h('tr', { dataset: { plugin: p.name } },
      h('td', {}, h('strong', {}, p.name), h('div', { class: 'muted mono' }, p.digest.slice(0, 16))),
      h('td', { class: 'mono', title: 'reload generation · shoal:plugin WIT version' }, `gen ${p.generation} · wit ${p.wit_version}`, p.label ? h('div', { class: 'muted' }, p.label) : ''), h('td', {}, p.world), h('td', { class: 'state' }, badge(p.state)),
      h('td', {}, p.nodes.map((n) => h('span', { class: 'node-state' }, `${n.node} `, badge(n.state)))),
      h('td', {}, p.attached_to.join(', ') || '—'), h('td', {}, p.policy),
      h('td', { class: 'mono' }, `${fmtBytes(p.limits.memory_bytes)} · ${p.limits.call_timeout_ms} ms · ×${p.limits.max_instances}`),
      h('td', {}, `${p.failures.total}`, p.failures.total ? h('div', { class: 'muted' }, `traps ${p.failures.traps}, timeouts ${p.failures.timeouts}, memory ${p.failures.memory}, output ${p.failures.bad_output}`) : ''),
      h('td', {}, p.state === 'enabled' ? action(p, 'disable') : action(p, 'enable'), ' ', action(p, 'reload'), ' ', action(p, 'unload', 'DELETE'))));
    const pipelines = contexts.map((c) => h('section', { class: 'panel', dataset: { context: c.name } },
      h('h3', {}, `${c.path} — ${c.manager}, ${c.replication}`),
      stageList(c.pipeline.map((s) => s.name), c.pipeline.map((s) => h('span', {}, s.name, ' ', h('span', { class: 'muted' }, s.plugin ? `wasm ${s.kind}` : s.kind), s.enabled ? '' : [' ', badge('disabled')])),
        async (order) => { if (order) { await act(`pipeline of ${c.path} reordered`, () => api('PUT', `/api/v1/contexts/${enc(c.name)}/pipeline`, { order })); reload(); } })));
    const stack = h('section', { class: 'panel' }, h('h3', {}, 'Channel interceptors'),
      stageList(channel.interceptors.map((i) => i.name), channel.interceptors.map((i) => h('span', {}, i.name, ' ', h('span', { class: 'muted' }, i.plugin ? 'wasm' : 'native'), i.enabled ? '' : [' ', badge('disabled')])),
        async (order) => { if (order) { await act('interceptors reordered', () => api('PUT', '/api/v1/channel/interceptors', { order })); reload(); } }));
    box.replaceChildren(
      h('section', { class: 'panel' }, table(['Plugin', 'Generation · WIT', 'World', 'State', 'Per node', 'Attached', 'Policy', 'Limits', 'Failures', ''], rows)),
      h('h3', {}, 'Load a component'), uploadForm(contexts, reload),
      h('h3', {}, 'Pipelines'), h('div', { class: 'grid' }, pipelines, stack));
  };
  await reload();
}

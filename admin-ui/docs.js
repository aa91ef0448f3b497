// Renders /api/openapi.json as a readable, offline reference: operations grouped by tag,
// with parameters, request body and responses; schemas at the end. No CDN, no library.

import { h } from './core.js';

const refName = (s) => (s && s.$ref ? s.$ref.split('/').pop() : null);

function typeOf(s) {
  if (!s) return '';
  if (s.$ref) return refName(s);
  if (s.oneOf) return s.oneOf.map(typeOf).join(' | ');
  if (s.type === 'array') return `${typeOf(s.items)}[]`;
  const t = Array.isArray(s.type) ? s.type.join(' | ') : s.type || 'any';
  return s.format ? `${t} (${s.format})` : s.enum ? `${t}: ${s.enum.join(' | ')}` : t;
}

function operation(method, path, op) {
  const params = (op.parameters || []).map((p) => h('tr', {}, h('td', { class: 'mono' }, p.name), h('td', {}, p.in), h('td', {}, typeOf(p.schema)), h('td', {}, p.required ? 'required' : ''), h('td', {}, p.description || '')));
  const body = op.requestBody && Object.entries(op.requestBody.content).map(([type, c]) => h('div', {}, h('span', { class: 'mono' }, type), ' ', typeOf(c.schema)));
  const responses = Object.entries(op.responses).map(([code, r]) => h('tr', {}, h('td', {}, code), h('td', {}, r.description), h('td', {}, Object.entries(r.content || {}).map(([type, c]) => h('div', {}, h('span', { class: 'mono' }, type), ' ', typeOf(c.schema))))));
  const open = (op.security || []).some((s) => Object.keys(s).length === 0);
  return h('details', { class: 'panel', id: op.operationId },
    h('summary', {}, h('span', { class: 'badge' }, method.toUpperCase()), ' ', h('code', {}, path), ' — ', op.summary || '', open ? h('span', { class: 'muted' }, ' (no token)') : ''),
    op.description ? h('p', {}, op.description) : '',
    params.length ? [h('h3', {}, 'Parameters'), h('table', {}, h('tbody', {}, params))] : '',
    body ? [h('h3', {}, 'Request body'), body] : '',
    h('h3', {}, 'Responses'), h('table', {}, h('tbody', {}, responses)));
}

function schema(name, s) {
  const props = Object.entries(s.properties || {}).map(([k, p]) => h('tr', {}, h('td', { class: 'mono' }, k), h('td', {}, typeOf(p)), h('td', {}, (s.required || []).includes(k) ? 'required' : ''), h('td', {}, p.description || '')));
  return h('details', { class: 'panel', id: `schema-${name}` }, h('summary', {}, h('code', {}, name), s.enum ? ` — ${s.enum.join(' | ')}` : ''),
    s.description ? h('p', {}, s.description) : '', props.length ? h('table', {}, h('tbody', {}, props)) : '');
}

const spec = await (await fetch('/api/openapi.json')).json();
const main = document.getElementById('docs');
const byTag = new Map((spec.tags || []).map((t) => [t.name, []]));
for (const [path, item] of Object.entries(spec.paths)) {
  for (const [method, op] of Object.entries(item)) {
    const tag = (op.tags || ['other'])[0];
    if (!byTag.has(tag)) byTag.set(tag, []);
    byTag.get(tag).push(operation(method, path, op));
  }
}
main.replaceChildren(...[h('h2', {}, `${spec.info.title} ${spec.info.version}`), h('p', {}, spec.info.description),
  [...byTag.entries()].map(([tag, ops]) => [h('h3', {}, tag, ' ', h('span', { class: 'muted' }, (spec.tags.find((t) => t.name === tag) || {}).description || '')), ops]),
  h('h3', {}, 'Schemas'), Object.entries(spec.components.schemas).map(([n, s]) => schema(n, s))].flat(3));

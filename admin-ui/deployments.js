// Deployments page: upload an artifact to every node with a progress bar, per-node state,
// undeploy. Membership changes re-render the list (a node that rejoins catches up).

import { act, api, badge, fmtAgo, fmtBytes, followEvents, h, table, toast, upload } from './core.js';

export async function render(main) {
  const list = h('div', { id: 'deployments' });
  const file = h('input', { type: 'file', id: 'deploy-file', required: true });
  const name = h('input', { id: 'deploy-name', placeholder: 'name (default: file name)' });
  const progress = h('progress', { id: 'deploy-progress', max: 1, value: 0 });
  const pct = h('span', { id: 'deploy-pct', class: 'muted' });
  const reload = async () => {
    const ds = await api('GET', '/api/v1/deployments');
    list.replaceChildren(ds.length ? table(['Artifact', 'Size', 'Digest', 'Deployed', 'Per node', ''], ds.map((d) => h('tr', { dataset: { deployment: d.name } },
      h('td', {}, d.name), h('td', {}, fmtBytes(d.size_bytes)), h('td', { class: 'mono' }, d.digest.slice(0, 16)), h('td', {}, fmtAgo(d.deployed_ms)),
      h('td', {}, d.nodes.map((n) => h('div', { title: n.detail || '' }, `${n.node} `, badge(n.state), n.detail ? h('span', { class: 'muted' }, ` ${n.detail}`) : ''))),
      h('td', {}, h('button', { class: 'danger', onclick: async () => {
        if (!confirm(`Undeploy ${d.name} from every node?`)) return;
        await act(`${d.name} undeployed`, () => api('DELETE', `/api/v1/deployments/${encodeURIComponent(d.name)}`));
        reload();
      } }, 'Undeploy'))))) : h('p', { class: 'muted' }, 'Nothing deployed yet.'));
  };
  const form = h('form', { class: 'row', id: 'deploy-form', onsubmit: async (e) => {
    e.preventDefault();
    const f = file.files[0];
    if (!f) return;
    const n = name.value.trim() || f.name;
    progress.value = 0;
    try {
      const d = await upload('PUT', `/api/v1/deployments/${encodeURIComponent(n)}`, f, (done, total) => {
        progress.max = total; progress.value = done; pct.textContent = `${Math.round((100 * done) / total)}% of ${fmtBytes(total)}`;
      });
      progress.value = progress.max;
      pct.textContent = 'done';
      toast(`${d.name} deployed: ${d.nodes.map((x) => `${x.node} ${x.state}`).join(', ')}`);
      reload();
    } catch (err) { toast(err.message, true); }
  } }, file, name, h('button', { type: 'submit', class: 'primary' }, 'Deploy to every node'), progress, pct);
  main.append(h('h2', {}, 'Deployments'), h('section', { class: 'panel' }, form, list));
  await reload();
  const stop = followEvents((e) => { if (e.kind !== 'session') reload().catch(() => {}); });
  return stop;
}

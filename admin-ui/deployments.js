// Deployments page: upload an artifact to every node with a progress bar, then each node's
// state live while the rollout runs (`receiving n%`, `staged`, `active`, `failed: reason`),
// undeploy. While a deploy runs (this tab's upload, or a rollout the node reports as running)
// the page polls /api/v1/rollouts and /api/v1/deployments every 300 ms; otherwise the event
// stream triggers a reload (a node that rejoins catches up).

import { act, api, badge, fmtAgo, fmtBytes, followEvents, h, table, toast, upload } from './core.js';

const POLL_MS = 300;

/** The text of one node's state in a rollout: `receiving 42%`, `staged`, `failed: reason`. */
export function rolloutNodeText(n, size) {
  if (n.state === 'receiving') return size ? `receiving ${Math.floor((100 * n.bytes_received) / size)}%` : 'receiving';
  if (n.state === 'failed') return `failed: ${n.detail || 'no reason given'}`;
  return n.state;
}

/** The text of one node's state from a deployment (no rollout shown). */
function deploymentNodeText(n) {
  if (n.state === 'failed') return `failed: ${n.detail || 'no reason given'}`;
  return n.state;
}

/** A rollout is shown instead of the deployment's state while it runs, and when it failed
 *  after the current version went live (its reasons matter until the next deploy). */
function shownRollout(d, r) {
  if (!r) return null;
  if (!r.outcome) return r;
  if (r.outcome === 'aborted' && (!d || r.started_ms >= d.deployed_ms)) return r;
  return null;
}

function nodeRows(d, r) {
  if (r) {
    return r.nodes.map((n) => h('div', { class: 'node-state', dataset: { node: n.node, state: n.state }, title: n.detail || '' },
      h('strong', {}, n.node), ' ', badge(n.state), ' ', h('span', { class: 'node-text' }, rolloutNodeText(n, r.size_bytes)),
      n.state === 'receiving' && r.size_bytes ? h('progress', { max: r.size_bytes, value: n.bytes_received }) : ''));
  }
  return d.nodes.map((n) => h('div', { class: 'node-state', dataset: { node: n.node, state: n.state }, title: n.detail || '' },
    h('strong', {}, n.node), ' ', badge(n.state), ' ', h('span', { class: 'node-text' }, deploymentNodeText(n)),
    n.detail && n.state !== 'failed' ? h('span', { class: 'muted' }, ` ${n.detail}`) : ''));
}

function rolloutCaption(r) {
  const what = r.undeploy ? 'undeploy' : `${r.version || ''} (${fmtBytes(r.size_bytes)})`;
  if (!r.outcome) return h('div', { class: 'rollout running' }, `rollout of ${what}: ${r.phase}`);
  return h('div', { class: 'rollout aborted' }, `rollout of ${what} aborted, nothing activated: ${r.error || ''}`);
}

export async function render(main) {
  const list = h('div', { id: 'deployments' });
  const file = h('input', { type: 'file', id: 'deploy-file', required: true });
  const name = h('input', { id: 'deploy-name', placeholder: 'name (default: file name)' });
  const kind = h('select', { id: 'deploy-kind' }, ['plugin', 'application', 'file'].map((k) => h('option', { value: k }, k)));
  const path = h('input', { id: 'deploy-path', placeholder: 'context path, e.g. /shop', hidden: true });
  kind.addEventListener('change', () => { path.hidden = kind.value !== 'application'; });
  const progress = h('progress', { id: 'deploy-progress', max: 1, value: 0 });
  const pct = h('span', { id: 'deploy-pct', class: 'muted' });
  let uploading = false;
  let running = false;

  const reload = async () => {
    const [ds, rs] = await Promise.all([api('GET', '/api/v1/deployments'), api('GET', '/api/v1/rollouts')]);
    const byName = new Map(ds.map((d) => [d.name, d]));
    const rollouts = new Map();
    for (const r of rs) if (!rollouts.has(r.name)) rollouts.set(r.name, r);
    running = rs.some((r) => !r.outcome);
    const names = [...new Set([...rs.map((r) => r.name), ...ds.map((d) => d.name)])].sort();
    const rows = names.map((n) => {
      const d = byName.get(n);
      const r = shownRollout(d, rollouts.get(n));
      if (!d && !r) return null;
      return h('tr', { dataset: { deployment: n, rollout: r ? (r.outcome || 'running') : '' } },
        h('td', {}, h('strong', {}, n), h('div', { class: 'muted' }, d ? d.kind : (r.kind || ''))),
        h('td', {}, d ? d.version : '—', r && !r.undeploy && (!d || r.version !== d.version) ? h('div', { class: 'muted' }, `→ ${r.version}`) : ''),
        h('td', {}, fmtBytes(d ? d.size_bytes : r.size_bytes)),
        h('td', { class: 'mono' }, (d ? d.digest : r.digest || '').slice(0, 16)),
        h('td', {}, d ? fmtAgo(d.deployed_ms) : 'not deployed'),
        h('td', { class: 'nodes' }, r ? rolloutCaption(r) : '', nodeRows(d, r)),
        h('td', {}, d ? h('button', { class: 'danger', onclick: async () => {
          if (!confirm(`Undeploy ${n} from every node?`)) return;
          await act(`${n} undeployed`, () => api('DELETE', `/api/v1/deployments/${encodeURIComponent(n)}`));
          reload();
        } }, 'Undeploy') : ''));
    }).filter(Boolean);
    list.replaceChildren(rows.length ? table(['Artifact', 'Version', 'Size', 'Digest', 'Deployed', 'Per node', ''], rows) : h('p', { class: 'muted' }, 'Nothing deployed yet.'));
  };

  const form = h('form', { class: 'row', id: 'deploy-form', onsubmit: async (e) => {
    e.preventDefault();
    const f = file.files[0];
    if (!f) return;
    const n = name.value.trim() || f.name;
    const q = new URLSearchParams({ kind: kind.value });
    if (kind.value === 'application') q.set('meta.path', path.value.trim());
    progress.value = 0;
    uploading = true;
    try {
      const d = await upload('PUT', `/api/v1/deployments/${encodeURIComponent(n)}?${q}`, f, (done, total) => {
        progress.max = total; progress.value = done; pct.textContent = `${Math.round((100 * done) / total)}% of ${fmtBytes(total)}`;
      });
      progress.value = progress.max;
      pct.textContent = 'done';
      toast(`${d.name} deployed: ${d.nodes.map((x) => `${x.node} ${x.state}`).join(', ')}`);
    } catch (err) {
      pct.textContent = 'failed';
      toast(err.message, true);
    } finally {
      uploading = false;
      await reload().catch(() => {});
    }
  } }, file, name, kind, path, h('button', { type: 'submit', class: 'primary' }, 'Deploy to every node'), progress, pct);

  main.append(h('h2', {}, 'Deployments'), h('section', { class: 'panel' }, form, list));
  await reload();
  // Live per-node progress while something runs; events cover the quiet times.
  const timer = setInterval(() => { if (uploading || running) reload().catch(() => {}); }, POLL_MS);
  const stop = followEvents((e) => { if (e.kind !== 'session') reload().catch(() => {}); });
  return () => { clearInterval(timer); stop(); };
}

// Shared helpers of the admin UI: DOM building (text only, never innerHTML with data),
// the API client (bearer token from sessionStorage, problem+json errors), toasts, SSE.

const TOKEN_KEY = 'shoal-admin-token';

export const token = () => sessionStorage.getItem(TOKEN_KEY);
export const setToken = (t) => t ? sessionStorage.setItem(TOKEN_KEY, t) : sessionStorage.removeItem(TOKEN_KEY);

/** h('td', {class: 'x', onclick: f}, 'text', child) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export const badge = (text) => h('span', { class: `badge ${text}` }, text);

export function table(headers, rows) {
  return h('table', {}, h('thead', {}, h('tr', {}, headers.map((x) => h('th', {}, x)))), h('tbody', {}, rows));
}

export class ApiError extends Error {
  constructor(status, detail) { super(detail); this.status = status; }
}

/** Calls the REST API; throws ApiError with the problem's detail on failure. */
export async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${token() || ''}` };
  const init = { method, headers };
  if (body !== undefined) { headers['Content-Type'] = 'application/json'; init.body = JSON.stringify(body); }
  const res = await fetch(path, init);
  if (res.status === 401) window.dispatchEvent(new Event('shoal-unauthorized'));
  if (!res.ok) throw new ApiError(res.status, await problemDetail(res));
  if (res.status === 204) return null;
  const type = res.headers.get('content-type') || '';
  return type.includes('json') ? res.json() : res.text();
}

async function problemDetail(res) {
  try { const p = await res.json(); return `${p.title}: ${p.detail}`; } catch { return `HTTP ${res.status}`; }
}

/** Uploads a File with XHR so that upload progress can be shown; resolves with the JSON answer. */
export function upload(method, url, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    xhr.setRequestHeader('Authorization', `Bearer ${token() || ''}`);
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    xhr.upload.addEventListener('progress', (e) => { if (e.lengthComputable) onProgress(e.loaded, e.total); });
    xhr.addEventListener('load', () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(new ApiError(xhr.status, body ? `${body.title}: ${body.detail}` : `HTTP ${xhr.status}`));
    });
    xhr.addEventListener('error', () => reject(new ApiError(0, 'network error: is the node still up?')));
    xhr.send(file);
  });
}

let toastTimer;
export function toast(message, isError = false) {
  const el = document.getElementById('toast');
  el.textContent = message;
  el.className = isError ? 'error' : '';
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, isError ? 8000 : 3000);
}

/** Runs an action, toasting its result or error; returns true on success. */
export async function act(label, fn) {
  try { await fn(); toast(label); return true; } catch (e) { toast(e.message, true); return false; }
}

export const fmtTime = (ms) => new Date(ms).toLocaleTimeString();
export const fmtAgo = (ms) => {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return s < 60 ? `${s}s ago` : s < 3600 ? `${Math.floor(s / 60)}m ago` : `${Math.floor(s / 3600)}h ago`;
};
export const fmtBytes = (n) => n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / (1 << 20)).toFixed(1)} MiB`;

/**
 * Follows /api/v1/events with fetch (EventSource cannot send the Authorization header).
 * Calls onEvent(event) per event; returns a function that stops it.
 */
export function followEvents(onEvent) {
  const ctrl = new AbortController();
  (async () => {
    const res = await fetch('/api/v1/events', { headers: { Authorization: `Bearer ${token() || ''}` }, signal: ctrl.signal });
    if (!res.ok || !res.body) return;
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      let end;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
        if (data) { try { onEvent(JSON.parse(data)); } catch { /* lagged notice or keep-alive */ } }
      }
    }
  })().catch(() => {});
  return () => ctrl.abort();
}

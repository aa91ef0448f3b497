// Traffic page: messages/s and bytes/s per peer over the last 2 minutes (sampled every
// second from the cumulative counters), the interceptor stack and the send options.

import { api, badge, h, table } from './core.js';
import { COLORS, drawChart } from './chart.js';

const SAMPLE_MS = 1000;
const KEEP = 130;

function rates(prev, cur) {
  const dt = (cur.at_ms - prev.at_ms) / 1000;
  if (dt <= 0) return null;
  return { msgs: (cur.messages_sent + cur.messages_received - prev.messages_sent - prev.messages_received) / dt,
    bytes: (cur.bytes_sent + cur.bytes_received - prev.bytes_sent - prev.bytes_received) / dt };
}

export async function render(main) {
  const msgCanvas = h('canvas', { id: 'chart-messages' });
  const byteCanvas = h('canvas', { id: 'chart-bytes' });
  const legend = h('div', { class: 'legend', id: 'legend' });
  const peersBox = h('div', { id: 'peers' });
  const stackBox = h('div', { id: 'stack' });
  main.append(h('h2', {}, 'Traffic'), legend,
    h('div', { class: 'grid' },
      h('section', { class: 'panel' }, h('h3', {}, 'Messages per second (sent + received)'), msgCanvas),
      h('section', { class: 'panel' }, h('h3', {}, 'Bytes per second (sent + received)'), byteCanvas)),
    h('h3', {}, 'Peers'), h('section', { class: 'panel' }, peersBox),
    h('h3', {}, 'Interceptor stack (send runs top-down)'), h('section', { class: 'panel' }, stackBox));

  const last = new Map();
  const series = new Map();
  const sample = async () => {
    const peers = await api('GET', '/api/v1/channel/peers');
    peers.forEach((p, i) => {
      if (!series.has(p.peer)) series.set(p.peer, { color: COLORS[i % COLORS.length], msgs: [], bytes: [] });
      const s = series.get(p.peer);
      const prev = last.get(p.peer);
      const r = prev && rates(prev, p);
      if (r) { s.msgs.push([p.at_ms, r.msgs]); s.bytes.push([p.at_ms, r.bytes]); }
      if (s.msgs.length > KEEP) { s.msgs.shift(); s.bytes.shift(); }
      last.set(p.peer, p);
    });
    const list = [...series.entries()];
    drawChart(msgCanvas, list.map(([name, s]) => ({ name, color: s.color, points: s.msgs })), { unit: '/s' });
    drawChart(byteCanvas, list.map(([name, s]) => ({ name, color: s.color, points: s.bytes })), { unit: 'B/s' });
    legend.replaceChildren(...list.map(([name, s]) => {
      const swatch = h('i');
      swatch.style.background = s.color;
      return h('span', {}, swatch, name);
    }));
    peersBox.replaceChildren(table(['Peer', 'Msgs sent', 'Msgs recv', 'Bytes sent', 'Bytes recv', 'Acks', 'Failures', 'Queue'],
      peers.map((p) => h('tr', {}, h('td', {}, p.peer), h('td', {}, p.messages_sent), h('td', {}, p.messages_received),
        h('td', {}, p.bytes_sent), h('td', {}, p.bytes_received), h('td', {}, p.acks), h('td', {}, p.failures), h('td', {}, p.queue_depth)))));
  };

  const channel = await api('GET', '/api/v1/channel');
  stackBox.replaceChildren(
    table(['#', 'Interceptor', 'Kind', 'Flag', 'State', 'Config', 'Counters'], channel.interceptors.map((i, n) => h('tr', {},
      h('td', {}, n + 1), h('td', {}, i.name), h('td', {}, i.plugin ? `wasm (${i.plugin})` : 'native'), h('td', { class: 'mono' }, i.option_flag),
      h('td', {}, badge(i.enabled ? 'enabled' : 'disabled')), h('td', { class: 'mono' }, JSON.stringify(i.config)),
      h('td', { class: 'mono' }, Object.entries(i.counters).map(([k, v]) => `${k}=${v}`).join(' '))))),
    h('h3', {}, 'Send options'),
    h('p', {}, `default flags ${channel.send_options.default_flags}: `, channel.send_options.flags.filter((f) => f.default).map((f) => f.name).join(', '),
      ` · ack timeout ${channel.send_options.ack_timeout_ms} ms · async queue ${channel.send_options.async_queue_depth}/${channel.send_options.async_queue_capacity} (full ${channel.send_options.async_queue_full_total}×)`));

  await sample();
  const timer = setInterval(() => sample().catch(() => {}), SAMPLE_MS);
  return () => clearInterval(timer);
}

// A small line chart on <canvas>: time on x, value on y, one line per series. No library.

export const COLORS = ['#1f6feb', '#d9480f', '#2f9e44', '#9c36b5', '#e8590c', '#0c8599'];

/** series: [{ name, color, points: [[ms, value], ...] }] */
export function drawChart(canvas, series, { unit = '', windowMs = 120000 } = {}) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, hgt = canvas.clientHeight;
  if (canvas.width !== w * dpr || canvas.height !== hgt * dpr) { canvas.width = w * dpr; canvas.height = hgt * dpr; }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, hgt);
  const pad = { l: 64, r: 12, t: 10, b: 24 };
  const now = Date.now(), t0 = now - windowMs;
  const values = series.flatMap((s) => s.points.map((p) => p[1]));
  const max = niceMax(Math.max(1, ...values));
  const x = (t) => pad.l + ((t - t0) / windowMs) * (w - pad.l - pad.r);
  const y = (v) => hgt - pad.b - (v / max) * (hgt - pad.t - pad.b);

  ctx.font = '11px system-ui, sans-serif';
  ctx.strokeStyle = '#e3e6eb';
  ctx.fillStyle = '#667085';
  ctx.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4, yy = Math.round(y(v)) + 0.5;
    ctx.beginPath(); ctx.moveTo(pad.l, yy); ctx.lineTo(w - pad.r, yy); ctx.stroke();
    ctx.textAlign = 'right'; ctx.textBaseline = 'middle';
    ctx.fillText(`${formatValue(v)}${unit}`, pad.l - 6, yy);
  }
  ctx.textAlign = 'center'; ctx.textBaseline = 'top';
  for (let s = 0; s <= windowMs / 1000; s += 30) {
    const t = now - s * 1000;
    ctx.fillText(s === 0 ? 'now' : `-${s}s`, x(t), hgt - pad.b + 6);
  }
  for (const s of series) {
    const pts = s.points.filter((p) => p[0] >= t0);
    if (pts.length < 2) continue;
    ctx.strokeStyle = s.color; ctx.lineWidth = 2;
    ctx.beginPath();
    pts.forEach(([t, v], i) => (i ? ctx.lineTo(x(t), y(v)) : ctx.moveTo(x(t), y(v))));
    ctx.stroke();
  }
}

function niceMax(v) {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function formatValue(v) {
  if (v >= 1e9) return `${(v / 1e9).toFixed(1)}G`;
  if (v >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(1)}k`;
  return `${Math.round(v)}`;
}

// A small line chart on a <canvas>: time on x up to the newest point,
// values on y from 0, one line per series, a legend.

export const palette = ["#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2", "#db2777", "#4b5563"];

// drawChart draws series ([{label, color, points: [{t, v}]}]) on canvas.
// The time axis spans the points (at least 30 s, at most windowMs) up to the
// newest one. format formats a y value for the axis and the legend.
export function drawChart(canvas, series, { windowMs = 300000, format = (v) => String(v) } = {}) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth;
  const h = canvas.clientHeight;
  if (!w || !h) return;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const g = canvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  g.font = "11px system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif";
  g.textBaseline = "middle";

  const pad = { left: 52, right: 14, top: 26, bottom: 22 };
  const pw = w - pad.left - pad.right;
  const ph = h - pad.top - pad.bottom;
  let newest = 0;
  let first = Infinity;
  let top = 0;
  for (const s of series) {
    for (const p of s.points) {
      newest = Math.max(newest, p.t);
      first = Math.min(first, p.t);
      top = Math.max(top, p.v);
    }
  }
  const span = newest ? Math.min(windowMs, Math.max(30000, newest - first)) : windowMs;
  const oldest = newest - span;
  const step = niceStep(top / 4);
  const yMax = Math.max(step, Math.ceil(top / step) * step);
  const x = (t) => pad.left + ((t - oldest) / span) * pw;
  const y = (v) => pad.top + ph - (v / yMax) * ph;

  // Grid and y labels.
  g.strokeStyle = "#e5e7eb";
  g.fillStyle = "#6b7280";
  g.lineWidth = 1;
  g.textAlign = "right";
  for (let v = 0; v <= yMax + step / 2; v += step) {
    const yy = Math.round(y(v)) + 0.5;
    g.beginPath();
    g.moveTo(pad.left, yy);
    g.lineTo(pad.left + pw, yy);
    g.stroke();
    g.fillText(format(v), pad.left - 6, yy);
  }
  // x labels, back from the newest point.
  g.textAlign = "center";
  g.textBaseline = "top";
  const tick = [10000, 15000, 30000, 60000].find((d) => span / d <= 6) || 60000;
  for (let d = 0; d <= span + 1; d += tick) {
    const label = d === 0 ? "now" : d % 60000 === 0 ? `-${d / 60000}m` : `-${d / 1000}s`;
    g.fillText(label, x(newest - d), pad.top + ph + 6);
  }

  if (!newest) {
    g.textAlign = "center";
    g.textBaseline = "middle";
    g.fillText("collecting samples…", pad.left + pw / 2, pad.top + ph / 2);
    return;
  }

  // Lines.
  g.save();
  g.beginPath();
  g.rect(pad.left, pad.top - 2, pw, ph + 4);
  g.clip();
  for (const s of series) {
    g.strokeStyle = s.color;
    g.lineWidth = 1.75;
    g.lineJoin = "round";
    g.beginPath();
    let started = false;
    for (const p of s.points) {
      if (p.t < oldest) continue;
      if (started) g.lineTo(x(p.t), y(p.v));
      else g.moveTo(x(p.t), y(p.v));
      started = true;
    }
    g.stroke();
  }
  g.restore();

  // Legend, top right, with each series' newest value.
  g.textBaseline = "middle";
  g.textAlign = "left";
  let lx = pad.left + pw;
  for (const s of [...series].reverse()) {
    const last = s.points.length ? s.points[s.points.length - 1].v : 0;
    const text = `${s.label} ${format(last)}`;
    const tw = g.measureText(text).width;
    lx -= tw + 18;
    g.fillStyle = s.color;
    g.fillRect(lx, 9, 10, 3);
    g.fillStyle = "#374151";
    g.fillText(text, lx + 14, 11);
  }
}

// niceStep rounds v up to 1, 2 or 5 times a power of ten, at least 1: the
// distance between the y axis's grid lines.
function niceStep(v) {
  if (!(v > 1)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) {
    if (v <= m * p) return m * p;
  }
  return 10 * p;
}

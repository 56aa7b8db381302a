// Charts drawn by hand: a line chart on a canvas and SVG sparklines. No third-party code.
"use strict";

function niceMax(v) {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function fmtNum(v) {
  if (v >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (v >= 1e4) return (v / 1e3).toFixed(0) + "k";
  if (v >= 1e3) return (v / 1e3).toFixed(1) + "k";
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

// series: [{label, color, values: [numbers]}]; times: [ms] aligned with values. opts (optional):
// axis: [left, right] labels under the x axis (default "-Ns" and "now"); marks: [{at: ms, color}]
// drawn as vertical lines (the lab page's faults).
function lineChart(canvas, series, times, opts) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  canvas.width = w * dpr; canvas.height = h * dpr;
  const g = canvas.getContext("2d");
  g.scale(dpr, dpr);
  g.clearRect(0, 0, w, h);
  const left = 48, right = 10, top = 8, bottom = 22;
  const pw = w - left - right, ph = h - top - bottom;
  let max = 0;
  for (const s of series) for (const v of s.values) max = Math.max(max, v);
  max = niceMax(max);
  g.font = "11px system-ui, sans-serif"; g.fillStyle = "#667085"; g.strokeStyle = "#e3e6ec";
  g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = top + ph - (ph * i) / 4;
    g.beginPath(); g.moveTo(left, y); g.lineTo(left + pw, y); g.stroke();
    g.textAlign = "right"; g.fillText(fmtNum((max * i) / 4), left - 6, y + 4);
  }
  const n = times.length, o = opts || {};
  if (n > 1) {
    const axis = o.axis || ["-" + Math.round((times[n - 1] - times[0]) / 1000) + "s", "now"];
    g.textAlign = "left"; g.fillText(axis[0], left, h - 6);
    g.textAlign = "right"; g.fillText(axis[1], left + pw, h - 6);
    for (const m of o.marks || []) {
      const x = left + (pw * (m.at - times[0])) / Math.max(1, times[n - 1] - times[0]);
      if (x < left || x > left + pw) continue;
      g.strokeStyle = m.color; g.beginPath(); g.moveTo(x, top); g.lineTo(x, top + ph); g.stroke();
    }
  }
  for (const s of series) {
    if (s.values.length < 2) continue;
    g.strokeStyle = s.color; g.lineWidth = 2; g.beginPath();
    s.values.forEach((v, i) => {
      const x = left + (pw * i) / (s.values.length - 1);
      const y = top + ph - (ph * v) / max;
      if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
    });
    g.stroke();
  }
}

function sparkline(values, width, height, color) {
  const w = width || 90, h = height || 22;
  const max = Math.max(1, ...values);
  const pts = values.map((v, i) => {
    const x = values.length > 1 ? (w * i) / (values.length - 1) : 0;
    return x.toFixed(1) + "," + (h - 1 - ((h - 2) * v) / max).toFixed(1);
  }).join(" ");
  return '<svg class="spark" width="' + w + '" height="' + h + '" viewBox="0 0 ' + w + " " + h +
    '"><polyline fill="none" stroke="' + (color || "#2463eb") + '" stroke-width="1.5" points="' +
    pts + '"/></svg>';
}

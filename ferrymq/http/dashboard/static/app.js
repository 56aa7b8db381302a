// The FerryMQ dashboard: one small script for every page, fed by /api/ferrymq/live (SSE).
"use strict";

const PAGE = document.body.dataset.page;
const HISTORY_MAX = Number(document.body.dataset.history) || 300;  // limits.HTTP_LIVE_HISTORY_POINTS
const main = document.getElementById("main");
let history = JSON.parse(sessionStorage.getItem("ferrymq-history") || "[]");

function esc(v) {
  return String(v === null || v === undefined ? "" : v).replace(/[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
function enc(v) { return encodeURIComponent(v); }

async function api(method, path, body, headers) {
  const opts = { method, headers: Object.assign({}, headers), credentials: "same-origin" };
  if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
  const r = await fetch(path, opts);
  const text = await r.text();
  const data = text ? JSON.parse(text) : null;
  if (!r.ok) throw new Error((data && (data.reason || data.error)) || ("HTTP " + r.status));
  return data;
}

function confirmDialog(text, extraHtml) {
  const d = document.getElementById("confirm-dialog");
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-extra").innerHTML = extraHtml || "";
  d.showModal();
  return new Promise((resolve) => {
    d.addEventListener("close", () => resolve(d.returnValue === "ok" ? d : null), { once: true });
  });
}

function flash(el, text, ok) {
  el.innerHTML = '<p class="flash ' + (ok ? "ok" : "error") + '">' + esc(text) + "</p>";
}

// --- login ---------------------------------------------------------------------------------

async function start() {
  document.querySelectorAll("[data-nav]").forEach((a) => a.classList.toggle("active", a.dataset.nav === PAGE));
  const who = await api("GET", "/dashboard/login/status");
  if (!who.user) return showLogin();
  document.getElementById("whoami").innerHTML = esc(who.user) + ' <button class="small" id="logout">Log out</button>';
  document.getElementById("logout").onclick = async () => { await api("POST", "/dashboard/login/logout"); location.reload(); };
  (PAGES[PAGE] || PAGES.overview)();
}

function showLogin() {
  main.hidden = true;
  document.getElementById("login").hidden = false;
  document.getElementById("login-form").onsubmit = async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    try {
      await api("POST", "/dashboard/login", { user: f.user.value, password: f.password.value });
      location.reload();
    } catch (e) {
      document.getElementById("login-error").textContent = "Login failed: " + e.message;
    }
  };
}

// --- live stream ---------------------------------------------------------------------------

const listeners = [];
function onLive(fn) {
  listeners.push(fn);
  if (listeners.length > 1) return;
  const es = new EventSource("/api/ferrymq/live");
  es.onmessage = (ev) => {
    const snap = JSON.parse(ev.data);
    history.push({ at: snap.at_ms, t: snap.totals,
      q: Object.fromEntries(snap.queues.slice(0, 50).map((r) => [r.vhost + "/" + r.name, r.ready])) });
    if (history.length > HISTORY_MAX) history = history.slice(-HISTORY_MAX);
    try { sessionStorage.setItem("ferrymq-history", JSON.stringify(history)); } catch (e) { /* full */ }
    showAlarms(snap.alarms);
    listeners.forEach((f) => f(snap));
  };
}

function showAlarms(a) {
  const el = document.getElementById("alarms");
  const on = [];
  if (a.memory) on.push("memory alarm");
  if (a.disk) on.push("disk alarm");
  el.hidden = !on.length;
  el.textContent = on.length ? on.join(", ") + " — publishers blocked: " + a.blocked_publishers : "";
}

function card(id, label, value) {
  return '<div class="card"><div class="label">' + esc(label) + '</div><div class="value" id="' + id + '">' + esc(value) + "</div></div>";
}

// --- pages ---------------------------------------------------------------------------------

const PAGES = {};

PAGES.overview = () => {
  main.innerHTML = "<h1>Overview</h1>" + '<div class="cards">' +
    [["c-pub", "Published / s"], ["c-del", "Delivered / s"], ["c-ack", "Acked / s"], ["c-depth", "Ready messages"],
     ["c-unacked", "Unacked"], ["c-conn", "Connections"], ["c-chan", "Channels"], ["c-cons", "Consumers"],
     ["c-queues", "Queues"], ["c-fsync", "fsyncs"], ["c-fsync-ms", "fsync latency, last (ms)"],
     ["c-fsync-mean", "fsync latency, mean (ms)"]].map(([id, l]) => card(id, l, "–")).join("") + "</div>" +
    '<div class="charts"><div class="panel"><div class="legend"><span><i style="background:var(--in)"></i>in (published/s)</span>' +
    '<span><i style="background:var(--out)"></i>out (delivered/s)</span><span><i style="background:#a855f7"></i>acked/s</span></div>' +
    '<canvas class="chart" id="rates"></canvas></div>' +
    '<div class="panel"><div class="legend"><span><i style="background:var(--warn)"></i>ready</span>' +
    '<span><i style="background:#64748b"></i>unacked</span></div><canvas class="chart" id="depth"></canvas></div></div>' +
    '<div class="panel" id="alarm-panel"></div><div class="panel" id="kafka-summary"></div>';
  onLive((s) => {
    const t = s.totals;
    const set = (id, v) => { document.getElementById(id).textContent = typeof v === "number" ? fmtNum(v) : v; };
    set("c-pub", t.published_rate); set("c-del", t.delivered_rate); set("c-ack", t.acked_rate);
    set("c-depth", t.depth); set("c-unacked", t.unacked); set("c-conn", t.connections); set("c-chan", t.channels);
    set("c-cons", t.consumers); set("c-queues", t.queues); set("c-fsync", s.storage.fsyncs || 0);
    set("c-fsync-ms", (s.storage.fsync_last_us || 0) / 1000); set("c-fsync-mean", (s.storage.fsync_mean_us || 0) / 1000);
    const times = history.map((h) => h.at);
    lineChart(document.getElementById("rates"), [
      { color: "#2463eb", values: history.map((h) => h.t.published_rate || 0) },
      { color: "#0f9d6e", values: history.map((h) => h.t.delivered_rate || 0) },
      { color: "#a855f7", values: history.map((h) => h.t.acked_rate || 0) }], times);
    lineChart(document.getElementById("depth"), [
      { color: "#c2410c", values: history.map((h) => h.t.depth) },
      { color: "#64748b", values: history.map((h) => h.t.unacked) }], times);
    const a = s.alarms;
    document.getElementById("alarm-panel").innerHTML = "<b>Alarms</b>: memory " + (a.memory ? '<span class="error">ON</span>' : '<span class="ok">ok</span>') +
      " · disk " + (a.disk ? '<span class="error">ON</span>' : '<span class="ok">ok</span>') + " · blocked publishers " + a.blocked_publishers +
      ' <span class="muted">· group commits ' + (s.storage.commits || 0) + " · log writes " + (s.storage.writes || 0) + "</span>";
    document.getElementById("kafka-summary").innerHTML = "<b>Kafka</b>: " + s.kafka.topics + " topics · " +
      s.kafka.partitions + " partitions · " + s.kafka.groups + " consumer groups";
  });
};

function inflight(r) {
  if (!r.in_flight.length) return '<span class="muted">no consumers</span>';
  return r.in_flight.map((c) => {
    const pct = c.prefetch ? Math.min(100, (100 * c.unacked) / c.prefetch) : 0;
    return '<div title="' + esc(c.tag) + '"><span class="bar' + (pct >= 100 ? " full" : "") + '"><b style="width:' + pct + '%"></b></span>' +
      c.unacked + " / " + (c.prefetch || "∞") + "</div>";
  }).join("");
}

function fmtAge(ms) {
  if (ms === null || ms === undefined) return "–";
  if (ms < 1000) return ms + " ms";
  if (ms < 120000) return (ms / 1000).toFixed(1) + " s";
  return Math.round(ms / 60000) + " min";
}

PAGES.queues = () => {
  main.innerHTML = '<h1>Queues</h1><div id="queue-flash"></div><table id="queues"><thead><tr><th>Vhost</th><th>Name</th><th class="num">Ready</th>' +
    '<th>Depth</th><th class="num">Oldest</th><th class="num">Unacked</th><th class="num">Consumers</th><th>In flight / prefetch</th><th class="num">In /s</th>' +
    '<th class="num">Out /s</th><th class="num">Redelivered</th><th class="num">Dead-lettered</th><th>Actions</th></tr></thead><tbody></tbody></table>' +
    '<p class="muted" id="queues-note"></p>';
  onLive((s) => {
    const body = document.querySelector("#queues tbody");
    body.innerHTML = s.queues.map((r) => {
      const key = r.vhost + "/" + r.name;
      const spark = sparkline(history.map((h) => (h.q && h.q[key]) || 0), 90, 22, "#c2410c");
      return '<tr data-queue="' + esc(r.name) + '" data-vhost="' + esc(r.vhost) + '"><td>' + esc(r.vhost) + "</td><td>" + esc(r.name) +
        (r.type === "stream" ? ' <span class="tag">stream</span>' : "") + '</td><td class="num ready">' + r.ready + "</td><td>" + spark +
        '</td><td class="num oldest">' + fmtAge(r.oldest_age_ms) + '</td><td class="num unacked">' + r.unacked + '</td><td class="num">' + r.consumers + "</td><td>" + inflight(r) +
        '</td><td class="num">' + r.rates.published + '</td><td class="num">' + r.rates.delivered + '</td><td class="num">' + r.redeliveries +
        '</td><td class="num">' + r.dead_lettered + "</td><td>" +
        ["purge", "delete", "move", "publish"].map((a) => '<button class="small" data-action="' + a + '">' + a + "</button>").join(" ") + "</td></tr>";
    }).join("") || '<tr><td colspan="13" class="muted">no queues</td></tr>';
    document.getElementById("queues-note").textContent = "showing " + s.queues_shown + " of " + s.totals.queues + " queues (deepest first)";
  });
  document.getElementById("queues").addEventListener("click", async (ev) => {
    const b = ev.target.closest("button[data-action]");
    if (!b) return;
    const tr = b.closest("tr");
    queueAction(b.dataset.action, tr.dataset.vhost, tr.dataset.queue);
  });
};

async function queueAction(action, vhost, name) {
  // purge, delete and publish are RabbitMQ's own management calls; move is FerryMQ's (no RabbitMQ equivalent)
  const q = "/api/queues/" + enc(vhost) + "/" + enc(name);
  const extra = { move: '<label>Move to queue <input id="move-to"></label>',
    publish: '<label>Payload <textarea id="publish-payload" rows="3" cols="40">hello from the dashboard</textarea></label>' +
      '<label><input type="checkbox" id="publish-persistent"> persistent</label>' }[action];
  const d = await confirmDialog(action + " queue '" + name + "' in vhost '" + vhost + "'?", extra);
  if (!d) return;
  const out = document.getElementById("queue-flash");
  try {
    let r;
    if (action === "move") r = await api("POST", "/api/ferrymq/queues/" + enc(vhost) + "/" + enc(name) + "/move",
      { to: d.querySelector("#move-to").value });
    else if (action === "publish") r = await api("POST", "/api/exchanges/" + enc(vhost) + "/amq.default/publish", {
      routing_key: name, payload: d.querySelector("#publish-payload").value, payload_encoding: "string",
      properties: { delivery_mode: d.querySelector("#publish-persistent").checked ? 2 : 1 } });
    else {
      const before = (await api("GET", q)).messages;
      await api("DELETE", action === "purge" ? q + "/contents" : q);
      r = { messages_before: before };
    }
    flash(out, action + ": " + JSON.stringify(r), true);
  } catch (e) { flash(out, action + " failed: " + e.message, false); }
}

PAGES.routing = () => {
  main.innerHTML = '<h1>Routing explainer</h1><p class="muted">Ask where a message would go, and why. Nothing is published.</p>' +
    '<form class="inline panel" id="route-form"><label>Vhost <input id="route-vhost" value="/" size="6"></label>' +
    '<label>Exchange <input id="route-exchange" required></label><label>Routing key <input id="route-key" size="30"></label>' +
    '<label>Headers (JSON) <textarea id="route-headers" rows="1" cols="30">{}</textarea></label>' +
    '<button class="primary" id="route-submit">Explain</button></form><div id="route-result"></div>';
  document.getElementById("route-form").onsubmit = async (ev) => {
    ev.preventDefault();
    const out = document.getElementById("route-result");
    try {
      const headers = JSON.parse(document.getElementById("route-headers").value || "{}");
      const r = await api("POST", "/api/ferrymq/route/" + enc(document.getElementById("route-vhost").value) + "/" +
        enc(document.getElementById("route-exchange").value), { routing_key: document.getElementById("route-key").value, headers });
      out.innerHTML = renderRoute(r);
    } catch (e) { flash(out, "explain failed: " + e.message, false); }
  };
};

function renderRoute(r) {
  const dest = r.unroutable ? '<span class="error" id="route-verdict">unroutable: no queue would get it</span>' :
    '<span id="route-verdict">delivered to ' + r.queues.concat(r.streams).map((q) => '<b class="route-queue">' + esc(q) + "</b>").join(", ") + "</span>";
  let html = '<div class="panel"><div class="verdict">' + dest + "</div>" +
    (r.alternate_exchange ? '<p>via alternate exchange <b>' + esc(r.alternate_exchange) + "</b></p>" : "");
  for (const [q, dl] of Object.entries(r.dead_letter)) {
    html += '<p class="muted">' + esc(q) + " dead-letters to exchange '" + esc(dl.exchange) + "' with key '" + esc(dl.routing_key) + "'</p>";
  }
  for (const s of r.steps) {
    html += '<div class="step"><h3>Exchange ' + esc(s.exchange || "(default)") + ' <span class="tag">' + esc(s.type) + "</span></h3>" +
      "<table><thead><tr><th></th><th>Destination</th><th>Binding key</th><th>Arguments</th><th>Why</th></tr></thead><tbody>" +
      s.bindings.map((b) => '<tr class="binding ' + (b.matched ? "matched" : "unmatched") + '"><td><span class="tag ' + (b.matched ? "yes" : "no") + '">' +
        (b.matched ? "match" : "no") + "</span></td><td>" + esc(b.destination) + ' <span class="muted">' + b.destination_type + "</span></td><td>" +
        esc(b.routing_key) + "</td><td>" + esc(JSON.stringify(b.arguments)) + '</td><td class="why">' + esc(b.why) + "</td></tr>").join("") +
      "</tbody></table></div>";
  }
  return html + "</div>";
}

// at_ms is absolute (unix ms): each event shows its offset from the trace's first event, and the
// first one also its wall-clock time.
function traceEvents(events) {
  const t0 = events.length ? events[0].at_ms : 0;
  return events.map((e, i) => '<li><span class="offset">+' + (e.at_ms - t0) + " ms</span> " + esc(e.event) +
    (e.queue ? " [" + esc(e.queue) + "]" : "") + (e.detail ? " " + esc(e.detail) : "") +
    (i ? "" : ' <span class="muted wall">at ' + esc(new Date(t0).toLocaleString()) + "</span>") + "</li>").join("");
}

PAGES.traces = () => {
  main.innerHTML = '<h1>Message traces</h1><form class="inline panel" id="trace-form"><label>Sample one in <input id="trace-every" type="number" min="0" size="6"></label>' +
    '<button class="primary">Save</button><span class="muted" id="trace-info"></span></form><div id="trace-list"></div>';
  const load = async () => {
    const out = document.getElementById("trace-list");
    try {
      const r = await api("GET", "/api/ferrymq/traces");
      document.getElementById("trace-info").textContent = "capacity " + r.capacity + ", " + r.traces.length + " traces kept";
      if (document.activeElement.id !== "trace-every") document.getElementById("trace-every").value = r.sample_every;
      out.innerHTML = r.traces.map((t) => '<div class="panel trace" data-trace="' + esc(t.id) + '"><b>' + esc(t.exchange || "(default)") + "</b> → key <b>" +
        esc(t.routing_key) + '</b> <span class="muted">' + esc(t.vhost) + " · " + t.size + ' bytes</span><ul class="events">' +
        traceEvents(t.events) + "</ul></div>").join("") || '<p class="muted">no traces yet</p>';
    } catch (e) { flash(out, "traces unavailable: " + e.message, false); }
  };
  document.getElementById("trace-form").onsubmit = async (ev) => {
    ev.preventDefault();
    await api("PUT", "/api/ferrymq/traces/config", { sample_every: Number(document.getElementById("trace-every").value) });
    load();
  };
  load(); setInterval(load, 2000);
};

PAGES.dlq = () => {
  main.innerHTML = '<h1>Dead-letter queues</h1><div id="dlq-flash"></div><table id="dlqs"><thead><tr><th>Vhost</th><th>Queue</th><th class="num">Messages</th>' +
    "<th>Fed by</th><th>Actions</th></tr></thead><tbody></tbody></table><div id=\"dlq-peek\"></div>";
  const load = async () => {
    const rows = await api("GET", "/api/ferrymq/dlq");
    document.querySelector("#dlqs tbody").innerHTML = rows.map((d) => '<tr data-dlq="' + esc(d.name) + '" data-vhost="' + esc(d.vhost) + '"><td>' +
      esc(d.vhost) + "</td><td>" + esc(d.name) + '</td><td class="num dlq-count">' + d.messages + "</td><td>" + d.sources.map(esc).join(", ") +
      '</td><td><button class="small" data-action="peek">peek</button> <button class="small" data-action="replay">replay all</button></td></tr>').join("") ||
      '<tr><td colspan="5" class="muted">no dead-letter queues</td></tr>';
  };
  document.getElementById("dlqs").addEventListener("click", async (ev) => {
    const b = ev.target.closest("button[data-action]");
    if (!b) return;
    const tr = b.closest("tr");
    const base = "/api/ferrymq/dlq/" + enc(tr.dataset.vhost) + "/" + enc(tr.dataset.dlq) + "/";
    if (b.dataset.action === "peek") {
      const msgs = await api("GET", base + "peek?count=20");
      document.getElementById("dlq-peek").innerHTML = "<h2>" + esc(tr.dataset.dlq) + "</h2><table><thead><tr><th>Payload</th><th>Original queue</th><th>Reason</th>" +
        '<th class="num">Count</th></tr></thead><tbody>' + msgs.map((m) => "<tr><td><pre>" + esc(m.payload) + "</pre></td><td>" + esc(m.original_queue) +
        "</td><td>" + esc(m.reason) + '</td><td class="num">' + m.count + "</td></tr>").join("") + "</tbody></table>";
      return;
    }
    if (!(await confirmDialog("Replay every dead letter in '" + tr.dataset.dlq + "' to its original queue?"))) return;
    try {
      const r = await api("POST", base + "replay", { count: null });
      const t = (o) => Object.entries(o.targets).map(([q, n]) => q + ": " + n).join(", ");
      flash(document.getElementById("dlq-flash"), "replayed " + r.replayed + " · before: dlq " + r.before.dlq + " (" + t(r.before) +
        ") · after: dlq " + r.after.dlq + " (" + t(r.after) + ")", true);
    } catch (e) { flash(document.getElementById("dlq-flash"), "replay failed: " + e.message, false); }
    load();
  });
  load(); setInterval(load, 2000);
};

const GROUP_DETAILS_MAX = 50;  // consumer groups whose lag the streams page fetches (one request each)

PAGES.streams = () => {
  main.innerHTML = '<h1>Streams &amp; Kafka topics</h1><div id="topics"></div><h2>Consumer groups</h2><div id="groups"></div>';
  const load = async () => {
    const [topics, groups] = await Promise.all([api("GET", "/api/ferrymq/kafka/topics?sort=name"),
      api("GET", "/api/ferrymq/kafka/groups?sort=group_id")]);
    document.getElementById("topics").innerHTML = topics.filter((t) => !t.internal).map(renderTopic).join("") || '<p class="muted">no topics</p>';
    const shown = groups.slice(0, GROUP_DETAILS_MAX);
    const details = await Promise.all(shown.map((g) => api("GET", "/api/ferrymq/kafka/groups/" + enc(g.group_id)).catch(() => null)));
    document.getElementById("groups").innerHTML = (details.filter((g) => g).map(renderGroup).join("") || '<p class="muted">no consumer groups</p>') +
      (groups.length > shown.length ? '<p class="muted">showing ' + shown.length + " of " + groups.length + " groups</p>" : "");
  };
  load(); setInterval(load, 2000);
};

function renderTopic(t) {
  return '<div class="panel topic" data-topic="' + esc(t.name) + '"><b>' + esc(t.name) + '</b> <span class="muted">' + t.partitions +
    " partitions · retention.ms " + esc(t.retention.ms) + " · retention.bytes " + esc(t.retention.bytes) + " · cleanup " + esc(t.cleanup_policy) +
    '</span><table><thead><tr><th>Partition</th><th class="num">Start offset</th><th class="num">End offset</th><th class="num">Records</th></tr></thead><tbody>' +
    t.partition_details.map((p) => "<tr><td>" + p.partition + '</td><td class="num">' + p.log_start_offset + '</td><td class="num">' + p.log_end_offset +
      '</td><td class="num">' + (p.log_end_offset - p.log_start_offset) + "</td></tr>").join("") + "</tbody></table></div>";
}

function renderGroup(g) {
  return '<div class="panel group" data-group="' + esc(g.group_id) + '"><b>' + esc(g.group_id) + '</b> <span class="tag">' + esc(g.state) + "</span> " +
    g.members.length + ' members<table><thead><tr><th>Topic</th><th>Partition</th><th class="num">Committed</th><th class="num">End</th><th class="num">Lag</th></tr></thead><tbody>' +
    g.offsets.map((o) => "<tr><td>" + esc(o.topic) + "</td><td>" + o.partition + '</td><td class="num">' + o.committed_offset + '</td><td class="num">' +
      esc(o.log_end_offset === null ? "–" : o.log_end_offset) + '</td><td class="num">' + esc(o.lag === null ? "–" : o.lag) + "</td></tr>").join("") +
    "</tbody></table></div>";
}

// Connections and channels are RabbitMQ's own lists (/api/connections, /api/channels); channels are
// matched to their connection by connection_details.name. Kafka clients appear too, without a close
// button (DELETE /api/connections/{name} closes AMQP connections only).
PAGES.connections = () => {
  main.innerHTML = '<h1>Connections &amp; channels</h1><div id="conn-flash"></div><table id="connections"><thead><tr><th>Name</th><th>User</th><th>Vhost</th><th>Client</th>' +
    '<th>Protocol</th><th>Channels (prefetch · unacked)</th><th></th></tr></thead><tbody></tbody></table>';
  const load = async () => {
    const [conns, chans] = await Promise.all([api("GET", "/api/connections"), api("GET", "/api/channels?sort=number")]);
    const byConn = {};
    chans.forEach((ch) => (byConn[ch.connection_details.name] = byConn[ch.connection_details.name] || []).push(ch));
    document.querySelector("#connections tbody").innerHTML = conns.map((c) => renderConnection(c, byConn[c.name] || [])).join("") ||
      '<tr><td colspan="7" class="muted">no connections</td></tr>';
  };
  document.getElementById("connections").addEventListener("click", async (ev) => {
    const b = ev.target.closest("button[data-action]");
    if (!b) return;
    const name = b.closest("tr").dataset.connection;
    const d = await confirmDialog("Close connection " + name + "?", '<label>Reason <input id="close-reason" value="Closed via the FerryMQ dashboard" size="40"></label>');
    if (!d) return;
    const reason = d.querySelector("#close-reason").value;
    try {
      // headers carry bytes: send the reason as UTF-8 (the server decodes it so)
      await api("DELETE", "/api/connections/" + enc(name), undefined, { "X-Reason": unescape(encodeURIComponent(reason)) });
      flash(document.getElementById("conn-flash"), "closed " + name + ": " + reason, true);
    } catch (e) { flash(document.getElementById("conn-flash"), "close failed: " + e.message, false); }
    setTimeout(load, 300);
  });
  load(); setInterval(load, 2000);
};

function renderConnection(c, chans) {
  const props = c.client_properties || {};
  const client = props.product ? props.product + " " + (props.version || "") : props.client_id || "?";
  return '<tr data-connection="' + esc(c.name) + '"><td>' + esc(c.name) + "</td><td>" + esc(c.user) + "</td><td>" + esc(c.vhost) + "</td><td>" +
    esc(client) + "</td><td>" + esc(c.protocol) + "</td><td>" +
    chans.map((ch) => "#" + ch.number + " (" + ch.prefetch_count + " · " + ch.messages_unacknowledged + ")").join(", ") + "</td><td>" +
    (c.protocol.startsWith("AMQP") ? '<button class="small danger" data-action="close">close</button>' : "") + "</td></tr>";
}

// The lab page: `ferrymq lab` publishes one JSON snapshot per second per running series to
// amq.topic with key ferrymq.lab.progress; the page subscribes through browser push (/sse) and
// draws a card per series. A subscription sees only what is published while it is open, so the
// series seen so far are kept in sessionStorage: leaving the page and coming back keeps them.
const LAB_SERIES_MAX = 12;  // cards kept, the oldest dropped first
const LAB_COLORS = { fault: "#b42318", "fault-end": "#0f9d6e", restart: "#c2410c", phase: "#64748b", note: "#a855f7" };
const LAB_EMPTY = '<p class="muted" id="lab-empty">No lab run yet — start one with <code>ferrymq lab &lt;scenario&gt;</code></p>';

PAGES.lab = () => {
  main.innerHTML = '<h1>Lab</h1><p class="muted" id="lab-status">connecting…</p><div id="lab-runs" class="lab-grid">' + LAB_EMPTY + "</div>";
  const lab = JSON.parse(sessionStorage.getItem("ferrymq-lab") || "{}");
  Object.keys(lab).forEach((k) => drawLab(k, lab[k]));
  const es = new EventSource("/sse?exchange=amq.topic&key=ferrymq.lab.%23");
  es.onmessage = (ev) => {
    const frame = JSON.parse(ev.data);
    if (frame.type === "subscribed") document.getElementById("lab-status").textContent = "listening on amq.topic, key " + frame.key;
    if (frame.type !== "message" || frame.encoding !== "text") return;
    let snap;
    try { snap = JSON.parse(frame.body); } catch (e) { return; }
    if (typeof snap.run !== "string" || typeof snap.t !== "number" || typeof snap.duration !== "number") return;  // not a snapshot
    const key = snap.run + "/" + snap.series;
    labAdd(lab, key, snap);
    try { sessionStorage.setItem("ferrymq-lab", JSON.stringify(lab)); } catch (e) { /* full */ }
    drawLab(key, lab[key]);
  };
  es.onerror = () => { document.getElementById("lab-status").textContent = "disconnected, reconnecting…"; };
};

// One snapshot into the series it belongs to: a chart point per second, each event once (a
// snapshot carries all its series' events so far), at most LAB_SERIES_MAX series. A done series
// goes on being published: it stays at the time it finished, its last point replaced.
function labAdd(lab, key, snap) {
  const s = lab[key] || (lab[key] = { points: [], events: [] });
  if (s.last && s.last.state === "done") snap.t = s.last.t;
  if (s.points.length && s.points[s.points.length - 1][0] >= snap.t) s.points.pop();
  s.last = snap;
  s.points.push([snap.t, snap.in_per_s, snap.out_per_s]);
  if (s.points.length > HISTORY_MAX) s.points = s.points.slice(-HISTORY_MAX);
  const seen = new Set(s.events.map((e) => e.t + " " + e.kind + " " + e.label));
  (snap.events || []).forEach((e) => { if (!seen.has(e.t + " " + e.kind + " " + e.label)) s.events.push(e); });
  const keys = Object.keys(lab);
  keys.slice(0, Math.max(0, keys.length - LAB_SERIES_MAX)).forEach((k) => {
    delete lab[k]; document.querySelector('[data-lab="' + CSS.escape(k) + '"]')?.remove();
  });
}

function labStat(cls, label, value) {
  return '<div><div class="label">' + esc(label) + '</div><div class="value ' + cls + '">' + esc(value) + "</div></div>";
}

function drawLab(key, s) {
  const box = document.getElementById("lab-runs"), r = s.last;
  document.getElementById("lab-empty")?.remove();
  let el = document.querySelector('[data-lab="' + CSS.escape(key) + '"]');
  if (!el) { el = document.createElement("div"); el.className = "panel lab"; el.dataset.lab = key; box.append(el); }
  const pct = r.duration > 0 ? Math.min(100, (100 * r.t) / r.duration) : 0;
  const dash = (v, f) => (v === null || v === undefined ? "–" : f(v));
  el.innerHTML = '<div class="lab-head"><b class="lab-scenario">' + esc(r.scenario) + '</b> <span class="lab-target">' + esc(r.target) +
    '</span> · <span class="lab-series">' + esc(r.series) + '</span> <span class="tag lab-state ' + (r.state === "done" ? "yes" : "") + '">' +
    esc(r.state) + '</span> <span class="muted">run ' + esc(r.run) + "</span></div>" +
    '<div class="lab-progress"><span class="bar"><b style="width:' + pct + '%"></b></span>' + r.t.toFixed(0) + " / " + r.duration.toFixed(0) + " s</div>" +
    '<div class="lab-stats">' + labStat("lab-in", "in /s", fmtNum(r.in_per_s)) + labStat("lab-out", "out /s", fmtNum(r.out_per_s)) +
    labStat("lab-p99", "p99", dash(r.p99_ms, (v) => v.toFixed(1) + " ms")) + labStat("lab-depth", "depth", dash(r.depth, String)) +
    labStat("lab-sent", "sent", r.sent) + labStat("lab-received", "received", r.received) +
    labStat("lab-dup", "duplicates", r.duplicates) + labStat("lab-lost", "lost", dash(r.lost, String)) + "</div>" +
    '<div class="legend"><span><i style="background:var(--in)"></i>in /s</span><span><i style="background:var(--out)"></i>out /s</span>' +
    '<span><i style="background:var(--bad)"></i>fault</span></div><canvas class="chart lab-chart" data-points="' + s.points.length + '"></canvas>' +
    '<ul class="events lab-events">' + s.events.map((e) => '<li data-kind="' + esc(e.kind) + '"><span class="offset">' + e.t.toFixed(1) + " s</span> " +
      esc(e.kind) + " " + esc(e.label) + "</li>").join("") + "</ul>" +
    (r.report ? '<p class="muted lab-report">report: ' + esc(r.report) + "</p>" : "");
  const times = s.points.map((p) => p[0] * 1000);
  lineChart(el.querySelector("canvas"), [{ color: "#2463eb", values: s.points.map((p) => p[1]) },
    { color: "#0f9d6e", values: s.points.map((p) => p[2]) }], times,
  { axis: [dash(s.points[0]?.[0], (v) => +v.toFixed(1) + " s"), +r.t.toFixed(1) + " s"],
    marks: s.events.map((e) => ({ at: e.t * 1000, color: LAB_COLORS[e.kind] || "#64748b" })) });
}

start();

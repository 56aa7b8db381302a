// The Jobs page (ferrymq.jobs): job queues, states per job, the retry schedule, dead letters with
// replay, cron entries and workers. It reads /api/jobs/... every two seconds, as the other pages
// that read the API do, and replays through /api/ferrymq/dlq/.../replay (the Dead letters page's
// own endpoint). Loaded after app.js, whose helpers (api, esc, enc, card, flash, confirmDialog,
// fmtAge) it uses; app.js's start() runs the page once the login check returns.
"use strict";

function fmtTime(ms) {
  if (ms === null || ms === undefined) return "–";
  return new Date(ms).toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

function fmtIn(ms) {
  if (ms <= 0) return "due";
  return "in " + fmtAge(ms);
}

function jobsTable(id, heads, rows, empty) {
  return '<table id="' + id + '"><thead><tr>' + heads.map((h) => (h.startsWith("#") ? '<th class="num">' + esc(h.slice(1)) : "<th>" + esc(h)) + "</th>").join("") +
    "</tr></thead><tbody>" + (rows.join("") || '<tr><td colspan="' + heads.length + '" class="muted">' + esc(empty) + "</td></tr>") + "</tbody></table>";
}

function num(v, cls) { return '<td class="num' + (cls ? " " + cls : "") + '">' + esc(v) + "</td>"; }

PAGES.jobs = () => {
  main.innerHTML = '<h1>Jobs</h1><p class="muted" id="jobs-store"></p><div class="cards" id="jobs-cards"></div>' +
    '<h2>Job queues</h2><div id="jobs-queues"></div><h2>Jobs by state</h2><div id="jobs-states"></div>' +
    '<h2>Retry schedule</h2><div id="jobs-retries"></div><h2>Dead letters</h2><div id="jobs-flash"></div><div id="jobs-dlq"></div><div id="jobs-peek"></div>' +
    '<h2>Cron</h2><div id="jobs-crons"></div><h2>Workers</h2><div id="jobs-workers"></div>';
  const load = async () => {
    const [queues, states, retries, crons, workers] = await Promise.all(["queues", "states", "retries", "crons", "workers"].map(
      (v) => api("GET", "/api/jobs/" + v)));
    drawJobCards(queues, retries, workers);
    drawJobQueues(queues);
    drawJobStates(states);
    drawRetries(retries);
    drawCrons(crons, workers);
    drawWorkers(workers);
  };
  document.getElementById("jobs-dlq").addEventListener("click", async (ev) => {
    const b = ev.target.closest("button[data-action]");
    if (!b) return;
    const tr = b.closest("tr");
    if (b.dataset.action === "peek") await peekJobs(tr.dataset.vhost, tr.dataset.dlq);
    else await replayJobs(tr.dataset.vhost, tr.dataset.dlq, b.dataset.action === "replay-one" ? 1 : null);
    load();
  });
  load(); setInterval(load, 2000);
};

function drawJobCards(queues, retries, workers) {
  const sum = (k) => queues.reduce((n, q) => n + q[k], 0);
  document.getElementById("jobs-cards").innerHTML = [["jc-queued", "Queued", sum("queued")], ["jc-running", "Running", sum("running")],
    ["jc-retrying", "Retrying", sum("retrying")], ["jc-delayed", "Delayed", sum("delayed")], ["jc-dead", "Dead", sum("dead")],
    ["jc-workers", "Workers", workers.length]].map(([id, l, v]) => card(id, l, v)).join("");
}

function drawJobQueues(queues) {
  document.getElementById("jobs-queues").innerHTML = jobsTable("job-queues", ["Vhost", "Queue", "#Queued", "#Running", "#Retrying", "#Delayed", "#Dead", "#Consumers"],
    queues.map((q) => '<tr data-queue="' + esc(q.queue) + '"><td>' + esc(q.vhost) + "</td><td>" + esc(q.queue) +
      (q.tenant_queues ? ' <span class="tag">' + q.tenant_queues + " tenant queues</span>" : "") + "</td>" + num(q.queued, "queued") + num(q.running, "running") +
      num(q.retrying, "retrying") + num(q.delayed, "delayed") + num(q.dead, "dead") + num(q.consumers) + "</tr>"), "no job queues (none is bound to ferrymq.jobs.delayed)");
  document.getElementById("jobs-dlq").innerHTML = jobsTable("job-dlqs", ["Queue", "DLQ", "#Dead letters", "Actions"],
    queues.filter((q) => q.dlq).map((q) => '<tr data-vhost="' + esc(q.vhost) + '" data-dlq="' + esc(q.dlq) + '"><td>' + esc(q.queue) + "</td><td>" + esc(q.dlq) +
      "</td>" + num(q.dead, "dlq-count") + '<td><button class="small" data-action="peek">peek</button> <button class="small" data-action="replay-one">replay one</button> ' +
      '<button class="small danger" data-action="replay-all">replay all</button></td></tr>'), "no dead-letter queues");
}

function drawJobStates(s) {
  const el = document.getElementById("jobs-states");
  document.getElementById("jobs-store").textContent = s.store ? "job store: " + s.store + (s.error ? " — unreadable: " + s.error : "") :
    "no job store configured: states per job, the cron leader and last fires need jobs_store (FERRYMQ_JOBS_STORE) set to the app's store";
  if (!s.store) { el.innerHTML = '<p class="muted">per-job states come from the job store (see above)</p>'; return; }
  const cols = ["queued", "running", "retrying", "succeeded", "failed", "dead", "cancelled"];
  el.innerHTML = jobsTable("job-states", ["Job"].concat(cols.map((c) => "#" + c[0].toUpperCase() + c.slice(1))),
    s.jobs.map((j) => '<tr data-job="' + esc(j.job) + '"><td>' + esc(j.job) + "</td>" + cols.map((c) => num(j[c], "st-" + c)).join("") + "</tr>"), "no jobs recorded yet");
}

function drawRetries(r) {
  const now = Date.now();
  document.getElementById("jobs-retries").innerHTML = jobsTable("job-retries", ["Job", "Id", "Queue", "#Attempt", "Next attempt", "Kind", "Last error"],
    r.jobs.map((j) => '<tr data-id="' + esc(j.id) + '"><td>' + esc(j.job) + '</td><td class="mono">' + esc(j.id) + "</td><td>" + esc(j.queue) + "</td>" +
      num(j.attempt, "attempt") + '<td class="due">' + esc(fmtTime(j.due_ms)) + ' <span class="muted">' + esc(fmtIn(j.due_ms - now)) + "</span></td><td>" +
      '<span class="tag">' + esc(j.kind) + '</span></td><td class="error">' + esc(j.error || "") + "</td></tr>"), "no job waiting to retry") +
    (r.total > r.jobs.length ? '<p class="muted">showing ' + r.jobs.length + " of " + r.total + " (earliest first)</p>" : "") +
    (r.held > r.scanned ? '<p class="muted">looked at ' + r.scanned + " of " + r.held + " delayed messages (the earliest, and those near them): counts are of those</p>" : "");
}

function drawCrons(c, workers) {
  const leader = c.leader && workers.find((w) => c.leader.startsWith(w.host + ":" + w.pid + ":"));
  document.getElementById("jobs-crons").innerHTML = jobsTable("job-crons", ["Name", "Job", "Expression", "Time zone", "Next runs", "Last fire", "Schedulers"],
    c.crons.map((e) => '<tr data-cron="' + esc(e.name) + '"><td>' + esc(e.name) + "</td><td>" + esc(e.job) + "</td><td><code>" + esc(e.cron) + "</code></td><td>" +
      esc(e.tz) + '</td><td class="next-runs">' + (e.error ? '<span class="error">' + esc(e.error) + "</span>" : e.next_runs.map((t) => esc(fmtTime(t))).join("<br>")) +
      "</td><td>" + esc(fmtTime(e.last_fire_ms)) + "</td><td>" + e.schedulers.map((w) => esc(w) + (leader && leader.worker_id === w ? ' <span class="tag yes">leader</span>' : "")).join("<br>") +
      "</td></tr>"), "no cron entries announced by a connected worker") + (c.error ? '<p class="error">' + esc(c.error) + "</p>" : "");
}

function drawWorkers(workers) {
  document.getElementById("jobs-workers").innerHTML = jobsTable("job-workers", ["Worker", "Host", "#PID", "Queues", "#Threads", "#Running", "Scheduler", "Connected", "Last heartbeat"],
    workers.map((w) => '<tr data-worker="' + esc(w.worker_id) + '"><td class="mono">' + esc(w.worker_id) + "</td><td>" + esc(w.host) + "</td>" + num(w.pid) + "<td>" +
      esc(w.queues.join(", ")) + "</td>" + num(w.concurrency) + num(w.running, "running") + "<td>" + (w.scheduler ? "yes" : "–") + "</td><td>" + esc(fmtTime(w.connected_at)) +
      '</td><td class="heartbeat"><span class="' + (w.state === "alive" ? "ok" : "error") + '">' + esc(w.state) + "</span> " + esc(fmtAge(w.heartbeat_age_ms)) + " ago</td></tr>"),
    "no worker connected");
}

async function peekJobs(vhost, dlq) {
  const r = await api("GET", "/api/jobs/dlq/" + enc(vhost) + "/" + enc(dlq) + "?count=20");
  document.getElementById("jobs-peek").innerHTML = '<div class="panel"><b>' + esc(dlq) + "</b> — first " + r.letters.length + " of " + r.messages +
    jobsTable("job-letters", ["Job", "Id", "#Attempts", "Error", "#Replayed"], r.letters.map((l) => "<tr><td>" + esc(l.job) + '</td><td class="mono">' + esc(l.id) + "</td>" +
      num(l.attempts) + '<td class="error">' + esc(l.error) + "</td>" + num(l.replayed || 0) + "</tr>"), "empty") + "</div>";
}

async function replayJobs(vhost, dlq, count) {
  const what = count === 1 ? "the first dead letter" : "every dead letter";
  if (!(await confirmDialog("Replay " + what + " in '" + dlq + "' to its queue (from attempt 0)?"))) return;
  const out = document.getElementById("jobs-flash");
  try {
    const r = await api("POST", "/api/ferrymq/dlq/" + enc(vhost) + "/" + enc(dlq) + "/replay", { count });
    const t = (o) => Object.entries(o.targets).map(([q, n]) => q + ": " + n).join(", ");
    out.innerHTML = '<p class="flash ok" id="jobs-replayed">replayed ' + r.replayed + " · before: " + esc(dlq) + " " + r.before.dlq + " (" + esc(t(r.before)) +
      ") · after: " + esc(dlq) + " " + r.after.dlq + " (" + esc(t(r.after)) + ")</p>";
  } catch (e) { flash(out, "replay failed: " + e.message, false); }
}

// `reno ui`'s one page: Rate (pairs to like/dislike), Generate (a run with live progress) and Browse (the outputs
// gallery). Plain HTML with inline CSS and JS, no build step and no external resource: every URL is relative to
// /<token>/, so the token travels with each request (src/ui/server.ts).
export function uiPage(): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>reno ui</title>
<style>
:root { --fg:#1d2330; --muted:#667085; --line:#d9dde5; --accent:#2f6fdf; --bg:#f6f7f9; --bad:#b42318; --ok:#067647; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color:var(--fg); background:var(--bg); }
header { display:flex; align-items:center; gap:18px; padding:10px 20px; background:#fff; border-bottom:1px solid var(--line); }
header h1 { font-size:18px; margin:0; }
nav button { border:0; background:none; padding:8px 12px; font:inherit; cursor:pointer; border-bottom:2px solid transparent; }
nav button.on { border-color:var(--accent); color:var(--accent); font-weight:600; }
#status { margin-left:auto; color:var(--muted); }
main { padding:18px 20px; max-width:1100px; margin:0 auto; }
section { display:none; } section.on { display:block; }
.card { background:#fff; border:1px solid var(--line); border-radius:8px; padding:14px; margin-bottom:14px; }
.row { display:flex; gap:10px; align-items:center; flex-wrap:wrap; }
input[type=text], input[type=number], select { font:inherit; padding:6px 8px; border:1px solid var(--line); border-radius:6px; }
input.prompt { flex:1; min-width:260px; }
button.b { font:inherit; padding:6px 14px; border-radius:6px; border:1px solid var(--line); background:#fff; cursor:pointer; }
button.primary { background:var(--accent); color:#fff; border-color:var(--accent); }
button:disabled { opacity:.5; cursor:default; }
.error { color:var(--bad); white-space:pre-wrap; }
.banner { background:#fef3f2; border:1px solid #fecdca; border-radius:8px; padding:10px 14px; margin-bottom:14px; }
.pair { display:grid; grid-template-columns:1fr 1fr; gap:16px; }
.pair figure { margin:0; text-align:center; }
.pair img, .gen img { width:100%; max-width:380px; aspect-ratio:1; object-fit:contain; image-rendering:pixelated; background:#eef0f4; border-radius:6px; }
.keys { color:var(--muted); font-size:12px; }
kbd { border:1px solid var(--line); border-bottom-width:2px; border-radius:4px; padding:0 4px; font-size:12px; background:#fff; }
.grid2 { display:grid; grid-template-columns:repeat(auto-fill, minmax(150px, 1fr)); gap:8px 14px; }
.grid2 label { display:flex; flex-direction:column; color:var(--muted); font-size:12px; }
.gen { display:grid; grid-template-columns:380px 1fr; gap:18px; }
progress { width:100%; height:12px; }
table { border-collapse:collapse; } td, th { padding:2px 10px 2px 0; text-align:left; font-variant-numeric:tabular-nums; }
#queue li { margin:2px 0; } .state { font-size:12px; padding:1px 6px; border-radius:10px; background:#eef0f4; }
.state.running { background:#dbe7ff; } .state.failed { background:#fee4e2; } .state.done { background:#dcfae6; }
.gallery { display:grid; grid-template-columns:repeat(auto-fill, minmax(330px, 1fr)); gap:14px; }
.gallery .card { margin:0; } .gallery .imgs { display:flex; gap:6px; }
.gallery figure { margin:0; flex:1; min-width:0; text-align:center; }
.gallery img { width:100%; image-rendering:pixelated; background:#eef0f4; border-radius:4px; }
.gallery .card.hl { outline:3px solid var(--accent); }
.muted { color:var(--muted); } .small { font-size:12px; } h2 { font-size:15px; margin:0 0 10px; }
</style></head>
<body>
<header><h1>reno</h1>
<nav><button data-tab="rate" class="on">Rate</button><button data-tab="generate">Generate</button><button data-tab="browse">Browse</button></nav>
<span id="status"></span></header>
<main>
<div id="histerr" class="banner error" hidden></div>

<section id="rate" class="on">
 <div class="card"><div class="row">
  <input id="rprompt" class="prompt" type="text" placeholder="a prompt, e.g. a castle at dusk">
  <select id="rsource"></select>
  <button id="rnext" class="b primary">Show a pair</button>
  <button id="rfile" class="b" hidden>Next prompt from file</button>
 </div><div id="rerr" class="error"></div></div>
 <div class="card" id="rpair" hidden>
  <div class="muted" id="rpairprompt"></div>
  <div class="pair">
   <figure><img id="rleft" alt="left image"><figcaption><button id="bleft" class="b primary">&larr; I like the left one</button></figcaption></figure>
   <figure><img id="rright" alt="right image"><figcaption><button id="bright" class="b primary">I like the right one &rarr;</button></figcaption></figure>
  </div>
  <div class="row" style="justify-content:center;margin-top:10px"><button id="bskip" class="b">Skip</button><button id="bundo" class="b">Undo last choice</button></div>
 </div>
 <div id="rwait" class="card muted" hidden>Making a pair&hellip;</div>
 <p class="keys"><kbd>&larr;</kbd> left &nbsp; <kbd>&rarr;</kbd> right &nbsp; <kbd>&darr;</kbd> or <kbd>s</kbd> skip &nbsp; <kbd>u</kbd> undo &nbsp; (outside the prompt box). Each choice is saved at once to <span id="hfile"></span>.</p>
</section>

<section id="generate">
 <div class="card">
  <div class="row"><input id="gprompt" class="prompt" type="text" placeholder="a prompt"><button id="gstart" class="b primary">Generate</button></div>
  <div class="grid2" style="margin-top:10px">
   <label>seed<input id="gseed" type="number" min="0" step="1"></label>
   <label>steps<input id="gsteps" type="number" min="1" step="1"></label>
   <label>size (N or WxH)<input id="gsize" type="text" placeholder="native"></label>
   <label>guidance<select id="gguid"><option>like</option><option>dislike</option></select></label>
  </div>
  <div class="grid2" id="gweights" style="margin-top:8px"></div>
  <div class="row" style="margin-top:8px"><label><input id="gpersonal" type="checkbox"> personal (use my history)</label><label><input id="gnoopt" type="checkbox"> no optimisation (one-shot image)</label></div>
  <div id="gerr" class="error"></div>
 </div>
 <div class="card"><h2>Queue</h2><ul id="queue" class="small"></ul></div>
 <div class="card" id="gjob" hidden>
  <div class="gen"><div><img id="gbest" alt="current best image"><div class="small muted" id="gbestcap"></div></div>
  <div><h2 id="gtitle"></h2><progress id="gbar" max="1" value="0"></progress>
   <div id="gstep" class="small"></div><table id="grewards" class="small"></table>
   <div class="row" style="margin-top:10px"><button id="gstop" class="b">Stop</button><a id="greport" target="_blank" hidden>report.html</a><a id="ggallery" href="#" hidden>open in the gallery</a></div>
   <div id="gresult" class="small"></div></div></div>
 </div>
</section>

<section id="browse">
 <div class="row" style="margin-bottom:10px"><span class="muted" id="bcount"></span><button id="brefresh" class="b">Refresh</button></div>
 <div class="gallery" id="gallery"></div>
</section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let state = null, pair = null, busy = false, job = null, highlight = null;
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const fmt = (x) => (typeof x === "number" ? (Math.abs(x) >= 100 ? x.toFixed(2) : x.toFixed(4)) : String(x));

async function api(path, body) {
  const r = await fetch("api/" + path, body === undefined ? {} : { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const v = await r.json().catch(() => ({ error: r.status + " " + r.statusText }));
  if (!r.ok) throw new Error(v.error || r.statusText);
  return v;
}

function tab(name) {
  for (const b of document.querySelectorAll("nav button")) b.classList.toggle("on", b.dataset.tab === name);
  for (const s of document.querySelectorAll("section")) s.classList.toggle("on", s.id === name);
  if (name === "browse") loadRuns();
}
for (const b of document.querySelectorAll("nav button")) b.onclick = () => tab(b.dataset.tab);

function showHistory(h) {
  $("status").textContent = h.pairs + " pair" + (h.pairs === 1 ? "" : "s") + " in the history";
  $("status").dataset.pairs = h.pairs;
  $("hfile").textContent = h.file;
  $("histerr").hidden = !h.error;
  $("histerr").textContent = h.error ? "The history file cannot be used (it is left as it is): " + h.error : "";
  for (const id of ["bleft", "bright"]) $(id).disabled = !!h.error || busy;
  $("bundo").disabled = !!h.error || h.pairs === 0;
}

async function refresh() {
  state = await api("state");
  showHistory(state.history);
  renderQueue(state.queue);
}

// ---- rate ----
async function nextPair() {
  $("rerr").textContent = "";
  busy = true; $("rnext").disabled = true; $("rwait").hidden = false;
  try {
    pair = await api("pair", { prompt: $("rprompt").value, source: $("rsource").value });
    $("rleft").src = pair.left; $("rright").src = pair.right;
    $("rpairprompt").textContent = pair.prompt ? "Prompt: " + pair.prompt : "";
    $("rpair").hidden = false;
  } catch (e) { $("rerr").textContent = e.message; }
  finally { busy = false; $("rnext").disabled = false; $("rwait").hidden = true; if (state) showHistory(state.history); }
}
async function choose(choice) {
  if (!pair || busy) return;
  const p = pair; pair = null; $("rpair").hidden = true;
  try {
    const h = await api("choice", { pair: p.id, choice });
    state.history = h; showHistory(h);
    document.body.dataset.choices = String(Number(document.body.dataset.choices || 0) + 1);
    if (state.prompts && choice !== "skip") await nextPrompt();
    await nextPair();
  } catch (e) { $("rerr").textContent = e.message; }
}
async function undo() {
  try { const h = await api("undo", {}); state.history = h; showHistory(h); document.body.dataset.undos = String(Number(document.body.dataset.undos || 0) + 1); }
  catch (e) { $("rerr").textContent = e.message; }
}
async function nextPrompt() { const r = await api("next-prompt"); if (r.prompt) $("rprompt").value = r.prompt; }
$("rnext").onclick = nextPair; $("bleft").onclick = () => choose("left"); $("bright").onclick = () => choose("right");
$("bskip").onclick = () => choose("skip"); $("bundo").onclick = undo; $("rfile").onclick = nextPrompt;
$("rprompt").onkeydown = (e) => { if (e.key === "Enter") nextPair(); };
document.addEventListener("keydown", (e) => {
  if (!$("rate").classList.contains("on") || e.target.tagName === "INPUT" || e.target.tagName === "SELECT" || e.ctrlKey || e.metaKey || e.altKey) return;
  const k = { ArrowLeft: "left", ArrowRight: "right", ArrowDown: "skip", s: "skip" }[e.key];
  if (k && !(k !== "skip" && state && state.history.error)) { e.preventDefault(); choose(k); }
  else if (e.key === "u") { e.preventDefault(); undo(); }
});

// ---- generate ----
function renderQueue(list) {
  $("queue").innerHTML = list.length ? list.map((j) => "<li><span class='state " + j.state + "'>" + j.state + "</span> " + esc(j.kind) + ": " + esc(j.label) +
    (j.progress ? " (step " + j.progress.step + "/" + j.progress.total + ")" : "") + (j.error ? " <span class='error'>" + esc(j.error) + "</span>" : "") + "</li>").join("") : "<li class='muted'>nothing queued</li>";
  if (job) { const j = list.find((x) => x.id === job.id); if (j) { job = j; renderJob(); } }
}
function renderJob() {
  $("gjob").hidden = false;
  $("gtitle").textContent = job.label;
  const p = job.progress;
  $("gbar").max = p ? p.total : 1; $("gbar").value = p ? p.step : 0;
  $("gstep").textContent = job.state === "queued" ? "waiting in the queue" : p ? "step " + p.step + "/" + p.total + " · loss " + fmt(p.loss) + (p.eta_s !== null && job.state === "running" ? " · ETA " + Math.round(p.eta_s) + " s" : "") : job.state === "running" ? "loading models…" : job.state;
  $("grewards").innerHTML = p ? Object.entries(p.rewards).map(([k, v]) => "<tr><th>" + esc(k) + "</th><td>" + fmt(v) + "</td></tr>").join("") : "";
  $("gstop").disabled = !(job.state === "running" || job.state === "queued");
  const end = !(job.state === "running" || job.state === "queued");
  $("gresult").innerHTML = end ? "<span class='state " + job.state + "'>" + job.state + "</span> " + (job.error ? "<span class='error'>" + esc(job.error) + "</span>" : esc(job.dir || "")) : "";
  const name = end && job.dir ? job.dir.split(/[\\\\/]/).pop() : null;
  $("greport").hidden = $("ggallery").hidden = !name;
  if (name) { $("greport").href = "runs/" + encodeURIComponent(name) + "/report.html"; $("ggallery").dataset.name = name; }
}
$("gstart").onclick = async () => {
  $("gerr").textContent = "";
  const weights = {};
  for (const el of document.querySelectorAll("#gweights input")) weights[el.dataset.reward] = el.value;
  try {
    job = await api("generate", { prompt: $("gprompt").value, seed: $("gseed").value, steps: $("gsteps").value, size: $("gsize").value, guidance: $("gguid").value,
      weights, personal: $("gpersonal").checked, noOptimize: $("gnoopt").checked });
    $("gbest").removeAttribute("src"); $("gbestcap").textContent = ""; renderJob();
  } catch (e) { $("gerr").textContent = e.message; }
};
$("gstop").onclick = () => job && api("stop", { id: job.id }).catch((e) => { $("gerr").textContent = e.message; });
$("ggallery").onclick = (e) => { e.preventDefault(); highlight = $("ggallery").dataset.name; tab("browse"); };

// ---- browse ----
async function loadRuns() {
  const runs = await api("runs");
  $("bcount").textContent = runs.length + " folder" + (runs.length === 1 ? "" : "s") + " in " + (state ? state.outputs : "the outputs folder");
  $("gallery").innerHTML = runs.map((r) => {
    const scores = r.best ? Object.entries(r.best.rewards).map(([k, v]) => esc(k) + " " + fmt(v)).join(" · ") : "";
    const loss = r.best && r.init ? "loss " + fmt(r.init.total) + " → " + fmt(r.best.total) + " (best step " + r.best.step + ")" : "";
    return "<div class='card" + (r.name === highlight ? " hl" : "") + "' data-name='" + esc(r.name) + "'>" +
      "<div class='imgs'>" + r.images.map((i) => "<figure><img loading='lazy' src='runs/" + i.split("/").map(encodeURIComponent).join("/") + "' alt='" + esc(i) + "'><figcaption class='small muted'>" + esc({ "init.png": "initial", "best.png": "best", "grid.png": r.kind + " grid" }[i.split("/").pop()] || i) + "</figcaption></figure>").join("") + "</div>" +
      "<div><b>" + esc(r.prompt || "(" + r.kind + ")") + "</b></div><div class='small muted'>" + esc(r.kind) + " · " + esc(r.name) + (r.seed !== null ? " · seed " + r.seed : "") + (r.stopped ? " · stopped early" : "") + "</div>" +
      "<div class='small'>" + loss + "</div><div class='small muted'>" + scores + "</div>" +
      "<a class='small' target='_blank' href='runs/" + encodeURIComponent(r.name) + "/report.html'>report.html</a></div>";
  }).join("") || "<p class='muted'>No runs yet: generate one.</p>";
  const hl = highlight && document.querySelector(".gallery .card.hl"); if (hl) hl.scrollIntoView({ block: "center" });
}
$("brefresh").onclick = loadRuns;

// ---- live events ----
const events = new EventSource("api/events");
events.addEventListener("queue", (e) => renderQueue(JSON.parse(e.data)));
events.addEventListener("step", (e) => { const d = JSON.parse(e.data); document.body.dataset.steps = String(Number(document.body.dataset.steps || 0) + 1); if (job && d.id === job.id) { job.progress = d; renderJob(); } });
events.addEventListener("best", (e) => { const d = JSON.parse(e.data); if (job && d.id === job.id) { $("gbest").src = d.url; $("gbestcap").textContent = "best so far: step " + d.step; } });
events.addEventListener("done", (e) => { const d = JSON.parse(e.data); if (job && d.id === job.id) { job = d; renderJob(); document.body.dataset.done = d.state; } });
events.onopen = () => { document.body.dataset.live = "1"; };

(async () => {
  try {
    await refresh();
    $("rsource").innerHTML = state.sources.map((s) => "<option value='" + s + "'>" + ({ generate: "generate two images (two seeds)", runs: "from earlier runs (initial vs best)", images: "from the image folder" })[s] + "</option>").join("");
    $("rfile").hidden = !state.prompts;
    if (state.prompts) await nextPrompt();
    const d = state.defaults;
    $("gseed").value = d.seed; $("gsteps").value = d.steps; $("gguid").value = d.guidance;
    $("gweights").innerHTML = Object.entries(d.weights).map(([k, v]) => "<label>" + esc(k) + "<input type='number' min='0' step='any' data-reward='" + esc(k) + "' value='" + v + "'></label>").join("");
    // a page opened (again) while a generation runs follows it; otherwise it shows the last one
    const gens = state.queue.filter((j) => j.kind === "generate");
    const cur = gens.find((j) => j.state === "running") || gens.find((j) => j.state === "queued") || gens[gens.length - 1];
    if (cur) { job = cur; renderJob(); if (cur.hasBest) $("gbest").src = "jobs/" + cur.id + "/best.png?r=" + Date.now(); }
    document.body.dataset.ready = "1";
  } catch (e) { $("histerr").hidden = false; $("histerr").textContent = e.message; }
})();
</script>
</body></html>
`;
}

/* openaml studio: live logs (server-sent events), paging back a log, and actions.
   Every action is a same-origin call to /api/v1 with a JSON body: the API's role checks and its
   cross-site guard (Origin, JSON only) apply. User text is only ever set with textContent. */
"use strict";

function toast(text, bad) {
  const t = document.getElementById("toast");
  if (!t) return;
  t.textContent = text;
  t.className = bad ? "bad show" : "show";
  setTimeout(() => { t.className = ""; }, 6000);
}

async function api(method, url, body) {
  const resp = await fetch(url, {
    method, credentials: "same-origin",
    headers: {"Content-Type": "application/json", "Accept": "application/json"},
    body: body === undefined ? (method === "GET" ? undefined : "{}") : JSON.stringify(body),
  });
  let data = null;
  try { data = await resp.json(); } catch (e) { data = null; }
  if (!resp.ok) {
    const msg = (data && (data.message || (data.error && data.error.message))) || resp.statusText;
    throw new Error(resp.status + ": " + msg);
  }
  return data;
}

/* The /api/v1 operations the studio calls: its API client, typed against /openapi.json.
   tests/test_studio.py checks that each is an operation of the server's OpenAPI document and that
   each body field is a property of that operation's request schema; no other /api/v1 call is made
   from this file. Entries: [method, path, body fields or null]. */
const OPS = {
  createModelVersion: ["POST", "/api/v1/models/{name}/versions", ["path", "type"]],
  getOnlineEndpoint: ["GET", "/api/v1/online-endpoints/{name}", null],
  rerunJob: ["POST", "/api/v1/jobs/{name}/rerun", null],
  putOnlineEndpoint: ["PUT", "/api/v1/online-endpoints/{name}",
                      ["name", "auth_mode", "description", "tags", "traffic", "mirror_traffic"]],
  onlineEndpointKeys: ["POST", "/api/v1/online-endpoints/{name}/keys", null],
  putBatchEndpoint: ["PUT", "/api/v1/batch-endpoints/{name}", ["name", "defaults"]],
  invokeBatchEndpoint: ["POST", "/api/v1/batch-endpoints/{name}/jobs", ["inputs", "deployment_name"]],
};

function call(op, params, body) {
  const [method, path] = OPS[op];
  const url = path.replace(/\{(\w+)\}/g, (_, k) => encodeURIComponent(params[k]));
  return api(method, url, body);
}

function initActions() {
  document.querySelectorAll("button[data-post]").forEach((b) => {
    b.addEventListener("click", async () => {
      if (b.dataset.confirm && !window.confirm(b.dataset.confirm)) return;
      b.disabled = true;
      try { await api("POST", b.dataset.post); toast("done"); setTimeout(() => location.reload(), 400); }
      catch (e) { toast(e.message, true); b.disabled = false; }
    });
  });
  const rerun = document.getElementById("rerun");
  if (rerun) rerun.addEventListener("click", async () => {
    if (!window.confirm("Submit this job again as a new job?")) return;
    try { const r = await call("rerunJob", {name: rerun.dataset.job}); location.href = "/jobs/" + encodeURIComponent(r.name); }
    catch (e) { toast(e.message, true); }
  });
}

function initRegister() {
  const form = document.getElementById("register-model");
  if (!form) return;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const job = form.dataset.job;
    const output = form.elements.output.value;
    const rel = form.elements.path.value.replace(/^\/+/, "");
    const name = form.elements.name.value;
    let path = "azureml://jobs/" + job + "/outputs/" + output;
    if (output === "artifacts") path += "/paths/" + rel;
    try {
      const m = await call("createModelVersion", {name}, {path, type: form.elements.type.value});
      location.href = "/models/" + encodeURIComponent(m.name) + "?version=" + encodeURIComponent(m.version);
    } catch (e) { toast(e.message, true); }
  });
}

function showStatus(status) {
  const st = document.getElementById("job-status");
  if (st) st.textContent = status;
  const badge = document.querySelector("h1 .status");
  if (badge) { badge.textContent = status; badge.className = "status s-" + status.toLowerCase(); }
}

function initLog() {
  const box = document.getElementById("log");
  if (!box) return;
  const pre = document.getElementById("log-text");
  const state = document.getElementById("log-state");
  const job = box.dataset.job;
  let start = parseInt(box.dataset.start, 10);
  const earlier = document.getElementById("log-earlier");
  if (earlier) earlier.addEventListener("click", async () => {
    const r = await api("GET", "/jobs/" + encodeURIComponent(job) + "/log?before=" + start);
    pre.textContent = r.text + pre.textContent;
    start = r.start;
    if (start <= 0) earlier.remove(); else earlier.textContent = "load earlier (" + start + " bytes before)";
  });
  if (box.dataset.live !== "yes" || !window.EventSource) return;
  const offset = parseInt(box.dataset.offset, 10);
  const es = new EventSource("/jobs/" + encodeURIComponent(job) + "/log/stream?offset=" + offset);
  es.onmessage = (ev) => {
    const d = JSON.parse(ev.data);
    const atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 20;
    pre.appendChild(document.createTextNode(d.text));
    state.textContent = "streaming… (" + d.status + ")";
    showStatus(d.status);
    if (atBottom) box.scrollTop = box.scrollHeight;
  };
  es.addEventListener("end", (ev) => {
    const d = JSON.parse(ev.data);
    state.textContent = "the job has ended (" + d.status + ")";
    showStatus(d.status);
    box.dataset.live = "no";
    es.close();
  });
  // on a dropped connection (a server restart) EventSource reconnects by itself, sending the last id
  es.onerror = () => { if (box.dataset.live === "yes") state.textContent = "reconnecting…"; };
}

function initEndpoint() {
  const form = document.getElementById("traffic-form");
  if (form) form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const name = form.dataset.endpoint;
    const traffic = {}, mirror = {};
    for (const el of form.querySelectorAll("input")) {
      const [kind, dep] = el.name.split(":");
      const v = parseInt(el.value || "0", 10);
      if (kind === "traffic") traffic[dep] = v; else if (v > 0) mirror[dep] = v;
    }
    const pct = (o) => Object.entries(o).map(([k, v]) => k + " " + v + "%").join(", ") || "none";
    // name both what is live and what is mirrored: a change of mirror traffic alone is a change too
    const text = "Set the traffic of " + name + " to " + pct(traffic) + " and its mirror traffic to "
      + pct(mirror) + "?";
    if (!window.confirm(text)) return;
    try {
      const ep = await call("getOnlineEndpoint", {name});
      const spec = {name: ep.name, auth_mode: ep.auth_mode, description: ep.description, tags: ep.tags,
                    traffic, mirror_traffic: mirror};
      await call("putOnlineEndpoint", {name}, spec);
      toast("traffic updated");
    } catch (e) { toast(e.message, true); }
  });
  const keys = document.getElementById("show-keys");
  if (keys) keys.addEventListener("click", async () => {
    try {
      const k = await call("onlineEndpointKeys", {name: keys.dataset.endpoint});
      const out = document.getElementById("keys-out");
      out.textContent = "primary: " + k.primary_key + "\nsecondary: " + k.secondary_key;
      out.hidden = false;
    } catch (e) { toast(e.message, true); }
  });
  const test = document.getElementById("test-form");
  if (test) test.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = test.querySelector("textarea").value;
    const status = document.getElementById("test-status");
    const out = document.getElementById("test-response");
    const lat = document.getElementById("test-latency");
    // a new request clears the last one's answer: a failure must not leave an old response on show
    out.textContent = ""; lat.textContent = ""; status.textContent = "sending…";
    try { JSON.parse(body); } catch (e) { status.textContent = "invalid JSON: " + e.message; return; }
    try {
      const k = await call("onlineEndpointKeys", {name: test.dataset.endpoint});
      const headers = {"Content-Type": "application/json", "Authorization": "Bearer " + k.primary_key};
      const dep = test.querySelector("select").value;
      if (dep) headers["azureml-model-deployment"] = dep;
      const t0 = performance.now();
      const resp = await fetch(test.dataset.scoring, {method: "POST", headers, body, credentials: "omit"});
      const text = await resp.text();
      lat.textContent = Math.round(performance.now() - t0) + " ms";
      status.textContent = resp.status + " " + resp.statusText;
      let shown = text;
      try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* not JSON: as text */ }
      out.textContent = shown;
    } catch (e) { status.textContent = e.message; }
  });
}

function initBatch() {
  document.querySelectorAll("button.set-default").forEach((b) => {
    b.addEventListener("click", async () => {
      const ep = b.dataset.endpoint, dep = b.dataset.deployment;
      if (!window.confirm("Make " + dep + " the default deployment of " + ep + "?")) return;
      b.disabled = true;
      try {
        await call("putBatchEndpoint", {name: ep}, {name: ep, defaults: {deployment_name: dep}});
        toast("default deployment: " + dep); setTimeout(() => location.reload(), 400);
      } catch (e) { toast(e.message, true); b.disabled = false; }
    });
  });
  document.querySelectorAll("button.delete-api").forEach((b) => {
    b.addEventListener("click", async () => {
      if (!window.confirm(b.dataset.confirm || "Delete?")) return;
      b.disabled = true;
      try { await api("DELETE", b.dataset.url); toast("deleted"); setTimeout(() => { location.href = b.dataset.then; }, 400); }
      catch (e) { toast(e.message, true); b.disabled = false; }
    });
  });
  const form = document.getElementById("batch-invoke");
  if (form) form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = form.elements;
    let path;
    if (f.source.value === "datastore") {
      const rel = f.path.value.replace(/^\/+/, "");
      if (!rel) { toast("give the path of the input in the datastore", true); return; }
      path = "azureml://datastores/" + f.datastore.value + "/paths/" + rel;
    } else {
      if (!f.asset.value) { toast("choose a data asset", true); return; }
      path = "azureml:" + f.asset.value;
    }
    const body = {inputs: {input_data: {type: f.type.value, path}}};
    if (f.deployment.value) body.deployment_name = f.deployment.value;
    const btn = document.getElementById("invoke-submit");
    btn.disabled = true;
    try {
      const job = await call("invokeBatchEndpoint", {name: form.dataset.endpoint}, body);
      location.href = "/jobs/" + encodeURIComponent(job.name);
    } catch (e) { toast(e.message, true); btn.disabled = false; }
  });
}

document.addEventListener("DOMContentLoaded", () => { initActions(); initLog(); initEndpoint(); initRegister(); initBatch(); });

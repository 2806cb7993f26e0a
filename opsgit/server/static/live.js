// Live updates over server-sent events: a running run's log and status, an environment's runs
// table, Consul's health. Plain JavaScript, no build step.
"use strict";

function escapeText(text) {
  const span = document.createElement("span");
  span.textContent = text;
  return span;
}

function followRun(log) {
  const offset = log.textContent.length;
  const source = new EventSource(log.dataset.stream + "?offset=" + offset);
  source.addEventListener("log", (event) => {
    const data = JSON.parse(event.data);
    for (const line of data.lines) {
      const span = escapeText(line.text);
      if (line.class) span.className = line.class;
      log.appendChild(span);
      log.appendChild(document.createTextNode("\n"));
    }
  });
  source.addEventListener("status", (event) => {
    const data = JSON.parse(event.data);
    const status = document.getElementById("run-status");
    if (status) { status.textContent = data.name; status.className = "status " + data.status; }
    const summary = document.getElementById("run-summary");
    if (summary && data.summary) summary.textContent = data.summary;
    const progress = document.getElementById("run-progress");
    if (progress && data.progress) progress.textContent = data.progress.done + " of " + data.progress.total + " changes done";
    const took = document.getElementById("run-took");
    if (took && data.duration_seconds != null) took.textContent = data.duration_seconds.toFixed(1) + "s";
  });
  source.addEventListener("end", () => source.close());
}

async function refresh(container, url) {
  const response = await fetch(url, {credentials: "same-origin"});
  if (!response.ok) return;
  const page = new DOMParser().parseFromString(await response.text(), "text/html");
  container.replaceChildren(...page.body.childNodes);
}

function followEnvironment(root) {
  const fragment = root.querySelector("[data-fragment]");
  const source = new EventSource(root.dataset.live);
  source.addEventListener("changed", () => {
    if (fragment) refresh(fragment, fragment.dataset.fragment);
  });
}

function followConsul(body) {
  const source = new EventSource(body.dataset.consul);
  source.addEventListener("changed", () => refresh(body, "/consul?fragment=1&" + body.dataset.query));
}

document.addEventListener("DOMContentLoaded", () => {
  const log = document.querySelector("pre.log[data-stream]");
  if (log) followRun(log);
  const live = document.querySelector("[data-live]");
  if (live) followEnvironment(live);
  const consul = document.querySelector("[data-consul]");
  if (consul) followConsul(consul);
});

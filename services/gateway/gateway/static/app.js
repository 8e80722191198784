// The mp3converter page: log in, drop videos, watch them upload and convert, download the MP3s.
//
// The token lives in sessionStorage (this tab only, never a cookie) and goes in an Authorization
// header on every call. EventSource cannot send that header, so a job's events are read with
// fetch() and a stream reader, parsed as Server-Sent Events here; that keeps the token out of URLs
// (and so out of access logs and history) without a second kind of credential.
"use strict";

const TOKEN_KEY = "mp3converter.token";
const EMAIL_KEY = "mp3converter.email";
const FINAL = new Set(["done", "failed"]);
const UNREACHABLE = "The server is not reachable; check that it is running and try again.";

const $ = (selector) => document.querySelector(selector);
const rows = new Map(); // job_id or a local key -> {row, job}
let streams = new AbortController();

class Expired extends Error {}

function token() { return sessionStorage.getItem(TOKEN_KEY); }

function say(text, kind = "error") {
  const message = $("#message");
  message.textContent = text;
  message.className = kind === "info" ? "info" : "";
}

async function errorText(response) {
  try {
    return (await response.json()).message;
  } catch {
    return `The server answered ${response.status}.`;
  }
}

// A call to the gateway with the token; 401 means the login is over.
async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, { ...options, headers: { ...options.headers, Authorization: `Bearer ${token()}` } });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new Error(UNREACHABLE);
  }
  if (response.status === 401) throw new Expired("Your login has expired; log in again.");
  if (!response.ok) throw new Error(await errorText(response));
  return response;
}

function failed(error) {
  if (error.name === "AbortError") return;
  if (error instanceof Expired) {
    logOut();
  }
  say(error.message);
}

// ------------------------------------------------------------------ log in, log out

async function logIn(event) {
  event.preventDefault();
  const email = $("#email").value.trim();
  const password = $("#password").value;
  if (!email || !password) return say("Enter your email and password.");
  let response;
  try {
    response = await fetch("/login", { method: "POST", headers: { Authorization: `Basic ${basic(email, password)}` } });
  } catch {
    return say(UNREACHABLE);
  }
  if (response.status === 401) return say("Wrong email or password.");
  if (!response.ok) return say(await errorText(response));
  sessionStorage.setItem(TOKEN_KEY, await response.text());
  sessionStorage.setItem(EMAIL_KEY, email);
  $("#password").value = "";
  say("");
  show();
}

function basic(email, password) {
  const bytes = new TextEncoder().encode(`${email}:${password}`);
  return btoa(String.fromCharCode(...bytes));
}

function logOut() {
  streams.abort();
  streams = new AbortController();
  sessionStorage.removeItem(TOKEN_KEY);
  rows.clear();
  $("#jobs tbody").replaceChildren();
  show();
}

function show() {
  const loggedIn = Boolean(token());
  $("#login").hidden = loggedIn;
  $("#workspace").hidden = !loggedIn;
  $("#logout").hidden = !loggedIn;
  $("#who").hidden = !loggedIn;
  $("#who").textContent = loggedIn ? sessionStorage.getItem(EMAIL_KEY) : "";
  if (loggedIn) {
    $("#video").focus();
    loadJobs().catch(failed);
  } else {
    $("#email").focus();
  }
}

// ------------------------------------------------------------------ the jobs table

function mp3Name(filename) {
  const dot = filename.lastIndexOf(".");
  return `${(dot > 0 ? filename.slice(0, dot) : filename) || "audio"}.mp3`;
}

function cell(row, name) { return row.querySelector(`.${name}`); }

function addRow(key, filename, first = true) {
  const row = document.createElement("tr");
  for (const name of ["file", "status", "progress", "reason", "mp3"]) {
    const td = document.createElement("td");
    td.className = name;
    row.append(td);
  }
  cell(row, "file").textContent = filename;
  const bar = document.createElement("progress");
  bar.max = 100;
  bar.value = 0;
  bar.setAttribute("aria-label", `Progress of ${filename}`);
  const percent = document.createElement("span");
  cell(row, "progress").append(bar, " ", percent);
  const body = $("#jobs tbody");
  if (first) body.prepend(row); else body.append(row);
  $("#jobs").hidden = false;
  $("#empty").hidden = true;
  rows.set(key, row);
  return row;
}

function render(row, { status, progress, error, mp3_fid: mp3Fid, filename }) {
  cell(row, "status").textContent = status;
  row.dataset.status = status;
  const bar = cell(row, "progress").querySelector("progress");
  bar.value = progress;
  cell(row, "progress").querySelector("span").textContent = `${progress}%`;
  cell(row, "reason").textContent = error || "";
  const mp3 = cell(row, "mp3");
  if (status === "done" && mp3Fid && !mp3.firstChild) {
    const link = document.createElement("a");
    link.href = `/download?fid=${encodeURIComponent(mp3Fid)}`;
    link.textContent = "Download";
    link.addEventListener("click", (event) => {
      event.preventDefault();
      download(mp3Fid, mp3Name(filename)).catch(failed);
    });
    mp3.append(link);
  }
}

// The server's jobs, added below the rows this page already shows (uploads refused or in flight
// included), each followed live until it is final.
async function loadJobs() {
  const { jobs } = await (await api("/jobs", { signal: streams.signal })).json();
  for (const job of jobs) {
    if (rows.has(job.job_id)) continue;
    render(addRow(job.job_id, job.filename, false), job);
    if (!FINAL.has(job.status)) follow(job).catch(failed);
  }
  $("#empty").hidden = rows.size > 0;
  $("#jobs").hidden = rows.size === 0;
}

// The MP3 needs the token, which a plain link cannot send: fetch it, then save it under its name.
async function download(mp3Fid, name) {
  const blob = await (await api(`/download?fid=${encodeURIComponent(mp3Fid)}`)).blob();
  const url = URL.createObjectURL(blob);
  const save = document.createElement("a");
  save.href = url;
  save.download = name;
  document.body.append(save);
  save.click();
  save.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

// ------------------------------------------------------------------ upload

function upload(file) {
  const key = `local-${crypto.randomUUID()}`;
  const row = addRow(key, file.name);
  render(row, { status: "uploading", progress: 0, filename: file.name });
  const form = new FormData();
  form.append("file", file, file.name);
  const request = new XMLHttpRequest(); // fetch() cannot report upload progress
  request.open("POST", "/upload");
  request.setRequestHeader("Authorization", `Bearer ${token()}`);
  request.upload.addEventListener("progress", (event) => {
    if (event.lengthComputable) {
      render(row, { status: "uploading", progress: Math.floor((100 * event.loaded) / event.total), filename: file.name });
    }
  });
  request.addEventListener("error", () => refuse(row, file.name, UNREACHABLE));
  request.addEventListener("load", () => {
    let answer = {};
    try { answer = JSON.parse(request.responseText); } catch { /* not JSON: said below */ }
    if (request.status === 401) return failed(new Expired("Your login has expired; log in again."));
    if (request.status !== 202) {
      return refuse(row, file.name, answer.message || `The server answered ${request.status}.`);
    }
    rows.delete(key);
    rows.get(answer.job_id)?.remove(); // listed meanwhile by loadJobs: this row stands for it
    rows.set(answer.job_id, row);
    const job = { job_id: answer.job_id, status: answer.status, progress: 0, filename: file.name };
    render(row, job);
    follow(job).catch(failed);
  });
  request.send(form);
}

function refuse(row, filename, reason) {
  render(row, { status: "refused", progress: 0, error: reason, filename });
  say(`${filename}: ${reason}`);
}

function uploadAll(files) {
  for (const file of files) upload(file);
}

// ------------------------------------------------------------------ live progress

// Server-Sent Events from GET /jobs/<id>/events, resumed with Last-Event-ID when the stream drops.
async function follow(job) {
  const row = rows.get(job.job_id);
  let lastId = null;
  for (let lost = 0; lost < 6;) {
    const headers = { Accept: "text/event-stream" };
    if (lastId !== null) headers["Last-Event-ID"] = lastId;
    let response;
    try {
      response = await api(`/jobs/${job.job_id}/events`, { headers, signal: streams.signal });
    } catch (error) {
      if (error.message !== UNREACHABLE) throw error;
      lost += 1;
      await pause(2000);
      continue;
    }
    try {
      for await (const event of serverSentEvents(response.body)) {
        lost = 0;
        lastId = event.id ?? lastId;
        const state = JSON.parse(event.data);
        render(row, state);
        if (FINAL.has(event.event)) return;
      }
    } catch (error) {
      if (error.name === "AbortError") return;
      lost += 1;
      await pause(2000);
    }
  }
  throw new Error(UNREACHABLE);
}

async function* serverSentEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = { event: "message", data: "" };
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue; // a heartbeat
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "data") event.data += (event.data ? "\n" : "") + text;
        else if (field === "event") event.event = text;
        else if (field === "id") event.id = text;
      }
      if (event.data) yield event;
    }
  }
}

function pause(milliseconds) { return new Promise((resolve) => setTimeout(resolve, milliseconds)); }

// ------------------------------------------------------------------ wiring

function wire() {
  $("#login").addEventListener("submit", logIn);
  $("#logout").addEventListener("click", () => { logOut(); say("Logged out.", "info"); });
  const input = $("#video");
  input.addEventListener("change", () => {
    uploadAll(input.files);
    input.value = "";
  });
  const drop = $("#drop");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    uploadAll(event.dataTransfer.files);
  });
  show();
}

wire();

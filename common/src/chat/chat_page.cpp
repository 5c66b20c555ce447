// The chat page `ch07 serve` answers at / (one self-contained HTML file: no CDN, works offline).
#include "llmfs/chat/chat_page.h"

namespace llmfs {

std::string_view chat_page_html() {
  static constexpr std::string_view kPage = R"llmfs_page(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>llmfs chat</title>
<link rel="icon" href="data:,">
<style>
  :root {
    --bg: #f6f7f9; --panel: #ffffff; --border: #dde1e6; --text: #1f2328; --muted: #6b7280;
    --user: #2563eb; --user-text: #ffffff; --bot: #ffffff; --error: #b91c1c; --accent: #2563eb;
  }
  @media (prefers-color-scheme: dark) {
    :root {
      --bg: #16181c; --panel: #1f2227; --border: #33373e; --text: #e6e8eb; --muted: #9aa1ab;
      --user: #2f5fd0; --bot: #24282e; --error: #f87171; --accent: #5b8cff;
    }
  }
  * { box-sizing: border-box; }
  html, body { height: 100%; margin: 0; }
  body {
    display: flex; flex-direction: column; background: var(--bg); color: var(--text);
    font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Noto Sans KR",
      "Noto Sans CJK KR", "Apple SD Gothic Neo", "Malgun Gothic", "NanumGothic", "Helvetica Neue",
      Arial, sans-serif;
  }
  header {
    display: flex; align-items: center; gap: 8px; padding: 10px 16px;
    background: var(--panel); border-bottom: 1px solid var(--border);
  }
  header h1 { font-size: 17px; margin: 0; }
  #model { color: var(--muted); font-size: 13px; flex: 1; }
  button {
    font: inherit; font-size: 14px; padding: 6px 14px; border-radius: 8px; cursor: pointer;
    border: 1px solid var(--border); background: var(--panel); color: var(--text);
  }
  button:disabled { opacity: 0.45; cursor: default; }
  button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
  #settings {
    display: none; gap: 10px 16px; padding: 12px 16px; background: var(--panel);
    border-bottom: 1px solid var(--border); grid-template-columns: repeat(5, minmax(0, 1fr));
  }
  body.show-settings #settings { display: grid; }
  #settings label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); }
  #settings label.wide { grid-column: 1 / -1; }
  @media (max-width: 640px) { #settings { grid-template-columns: 1fr 1fr; } }
  #settings input, #settings textarea, #prompt {
    font: inherit; color: var(--text); background: var(--bg);
    border: 1px solid var(--border); border-radius: 8px; padding: 6px 8px;
  }
  #messages { flex: 1; overflow-y: auto; padding: 16px; display: flex; flex-direction: column; gap: 10px; }
  #empty { margin: auto; color: var(--muted); }
  .msg {
    max-width: min(760px, 85%); padding: 9px 13px; border-radius: 14px;
    white-space: pre-wrap; overflow-wrap: anywhere; word-break: keep-all;
  }
  .msg.user { align-self: flex-end; background: var(--user); color: var(--user-text); border-bottom-right-radius: 4px; }
  .msg.assistant { align-self: flex-start; background: var(--bot); border: 1px solid var(--border); border-bottom-left-radius: 4px; }
  .msg.assistant.streaming .text::after { content: "\258D"; color: var(--muted); animation: blink 1s steps(1) infinite; }
  .msg.error .text { color: var(--error); }
  .msg .meta { margin-top: 4px; font-size: 12px; color: var(--muted); white-space: normal; }
  @keyframes blink { 50% { opacity: 0; } }
  form {
    display: flex; gap: 8px; align-items: flex-end; padding: 12px 16px;
    background: var(--panel); border-top: 1px solid var(--border);
  }
  #key-form { border-top: none; border-bottom: 1px solid var(--border); align-items: center; }
  #key-form[hidden] { display: none; }
  #key-form label { display: flex; gap: 8px; align-items: center; flex: 1; }
  #key-form input { flex: 1; }
  #key-note { font-size: 12px; color: var(--muted); }
  #prompt { flex: 1; resize: none; min-height: 44px; max-height: 200px; }
</style>
</head>
<body data-state="idle">
<header>
  <h1>llmfs chat</h1>
  <span id="model">connecting…</span>
  <button type="button" id="toggle-settings">Settings</button>
  <button type="button" id="new-chat">New chat</button>
</header>
<form id="key-form" hidden>
  <label>This server needs an API key<input id="api-key" type="password" autocomplete="off" placeholder="API key"></label>
  <button type="submit" id="use-key" class="primary">Use key</button>
  <span id="key-note">kept in this tab only</span>
</form>
<section id="settings">
  <label class="wide">System prompt<textarea id="system" rows="2" placeholder="(none)"></textarea></label>
  <label>Temperature<input id="temperature" type="number" min="0" step="0.1" placeholder="server default"></label>
  <label>Top k<input id="top_k" type="number" min="1" step="1" placeholder="server default"></label>
  <label>Top p<input id="top_p" type="number" min="0" max="1" step="0.05" placeholder="server default"></label>
  <label>Max new tokens<input id="num_predict" type="number" step="1" placeholder="server default"></label>
  <label>Seed<input id="seed" type="number" step="1" placeholder="none"></label>
</section>
<main id="messages"><div id="empty">Ask the model something.</div></main>
<form id="composer">
  <textarea id="prompt" rows="2" placeholder="Message (Enter to send, Shift+Enter for a new line)"></textarea>
  <button type="submit" id="send" class="primary">Send</button>
  <button type="button" id="stop" disabled>Stop</button>
</form>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let modelName = "llmfs";
let history = [];        // [{role, content}] of finished user/assistant turns
let controller = null;   // AbortController of the running request
let chatId = 0;          // bumped by "New chat" so a stopped reply can't land in the new history
// The server's API key (serve.api_key), asked for when it answers 401: this tab only.
let apiKey = sessionStorage.getItem("llmfs-api-key") || "";

function withKey(headers) {
  return apiKey ? Object.assign({ Authorization: "Bearer " + apiKey }, headers) : headers;
}

function askForKey(wrong) {
  $("key-form").hidden = false;
  $("key-note").textContent = wrong ? "that key was refused; kept in this tab only" : "kept in this tab only";
  $("api-key").focus();
}

function setState(state) {
  document.body.dataset.state = state;
  $("send").disabled = state === "generating";
  $("stop").disabled = state !== "generating";
}

function scrollToEnd(force) {
  const box = $("messages");
  if (force || box.scrollHeight - box.scrollTop - box.clientHeight < 80) box.scrollTop = box.scrollHeight;
}

function addBubble(role, text) {
  const empty = $("empty");
  if (empty) empty.remove();
  const bubble = document.createElement("div");
  bubble.className = "msg " + role;
  const body = document.createElement("div");
  body.className = "text";
  body.textContent = text;
  bubble.appendChild(body);
  $("messages").appendChild(bubble);
  scrollToEnd(true);
  return bubble;
}

function addMeta(bubble, text) {
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.textContent = text;
  bubble.appendChild(meta);
}

function readOptions() {
  const options = {};
  const number = (id, parse) => {
    const raw = $(id).value.trim();
    if (raw !== "" && !Number.isNaN(parse(raw))) options[id] = parse(raw);
  };
  number("temperature", parseFloat);
  number("top_k", (s) => parseInt(s, 10));
  number("top_p", parseFloat);
  number("num_predict", (s) => parseInt(s, 10));
  number("seed", (s) => parseInt(s, 10));
  return options;
}

function statsLine(last) {
  const parts = [];
  if (typeof last.eval_count === "number") parts.push(last.eval_count + " tokens");
  if (last.eval_count > 0 && last.eval_duration > 0) {
    parts.push((last.eval_count / (last.eval_duration / 1e9)).toFixed(1) + " tokens/s");
  }
  if (last.done_reason) parts.push(last.done_reason);
  return parts.join(" · ");
}

async function errorText(resp) {
  const body = await resp.text();
  try {
    const err = JSON.parse(body).error;
    if (err) return "Error " + resp.status + ": " + (typeof err === "string" ? err : err.message);
  } catch (e) { /* not JSON */ }
  return "Error " + resp.status + ": " + (body.trim() || resp.statusText);
}

async function send() {
  const content = $("prompt").value;
  if (!content.trim() || controller) return;
  $("prompt").value = "";
  addBubble("user", content);
  const bubble = addBubble("assistant", "");
  const text = bubble.querySelector(".text");
  bubble.classList.add("streaming");
  setState("generating");

  const messages = [];
  const system = $("system").value.trim();
  if (system) messages.push({ role: "system", content: system });
  messages.push(...history, { role: "user", content });
  controller = new AbortController();
  const myChat = chatId;
  let reply = "";
  let last = null;
  try {
    const resp = await fetch("/api/chat", {
      method: "POST",
      headers: withKey({ "Content-Type": "application/json" }),
      body: JSON.stringify({ model: modelName, messages, stream: true, options: readOptions() }),
      signal: controller.signal,
    });
    if (resp.status === 401) askForKey(apiKey !== "");
    if (!resp.ok) throw new Error(await errorText(resp));
    const reader = resp.body.getReader();
    const decoder = new TextDecoder("utf-8");
    let buffered = "";
    const handle = (line) => {
      if (!line.trim()) return;
      const chunk = JSON.parse(line);
      if (chunk.error) throw new Error("Error: " + chunk.error);
      if (chunk.message && chunk.message.content) {
        reply += chunk.message.content;
        text.textContent = reply;
        scrollToEnd(false);
      }
      if (chunk.done) last = chunk;
    };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value, { stream: true });
      let nl;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        handle(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
      }
    }
    handle(buffered + decoder.decode());
    if (!last) throw new Error("Error: the stream ended early");
    history.push({ role: "user", content }, { role: "assistant", content: reply });
    addMeta(bubble, statsLine(last));
  } catch (err) {
    if (err.name === "AbortError") {
      if (myChat === chatId) history.push({ role: "user", content }, { role: "assistant", content: reply });
      addMeta(bubble, "stopped");
    } else {
      bubble.classList.add("error");
      const msg = err instanceof TypeError ? "Network error: " + err.message : err.message;
      text.textContent = reply ? reply + "\n\n" + msg : msg;
    }
  } finally {
    controller = null;
    bubble.classList.remove("streaming");
    setState("idle");
    scrollToEnd(false);
  }
}

$("composer").addEventListener("submit", (e) => { e.preventDefault(); send(); });
$("prompt").addEventListener("keydown", (e) => {
  // isComposing: Enter that finishes a Korean/Japanese IME composition must not send.
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
});
$("stop").addEventListener("click", () => { if (controller) controller.abort(); });
$("new-chat").addEventListener("click", () => {
  if (controller) controller.abort();
  chatId += 1;
  history = [];
  $("messages").replaceChildren();
  const empty = document.createElement("div");
  empty.id = "empty";
  empty.textContent = "Ask the model something.";
  $("messages").appendChild(empty);
  $("prompt").focus();
});
$("toggle-settings").addEventListener("click", () => document.body.classList.toggle("show-settings"));

function loadModel() {
  return fetch("/api/tags", { headers: withKey({}) })
    .then((r) => {
      if (r.status === 401) {
        askForKey(apiKey !== "");
        return Promise.reject(new Error("API key needed"));
      }
      return r.ok ? r.json() : Promise.reject(new Error("HTTP " + r.status));
    })
    .then((tags) => {
      const m = tags.models && tags.models[0];
      if (!m) throw new Error("no model");
      modelName = m.name;
      const size = m.details && m.details.parameter_size ? " · " + m.details.parameter_size : "";
      $("model").textContent = m.name + size;
      $("key-form").hidden = true;
    })
    .catch((e) => { $("model").textContent = e.message === "API key needed" ? "API key needed" : "model unknown"; });
}
$("key-form").addEventListener("submit", (e) => {
  e.preventDefault();
  apiKey = $("api-key").value.trim();
  $("api-key").value = "";
  if (apiKey) sessionStorage.setItem("llmfs-api-key", apiKey);
  else sessionStorage.removeItem("llmfs-api-key");
  loadModel().then(() => $("prompt").focus());
});
loadModel();
setState("idle");
$("prompt").focus();
</script>
</body>
</html>
)llmfs_page";
  return kPage;
}

}  // namespace llmfs

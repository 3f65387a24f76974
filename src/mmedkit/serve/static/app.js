// The family-doctor chat page: no framework, no build step.
// Model text is only ever inserted as text (Text nodes / textContent), never parsed as HTML.
"use strict";

const PAGE_TEMPERATURE = 0.5;
const state = { config: null, lang: "en", history: [], controller: null };
const $ = (id) => document.getElementById(id);

function t(key, vars) {
  const ui = state.config.ui;
  const table = ui[state.lang] || ui.en;
  const text = key in table ? table[key] : ui.en[key];
  if (typeof text !== "string") return text;
  return text.replace(/\{(\w+)\}/g, (_, name) => (vars && name in vars ? String(vars[name]) : ""));
}

function pickLanguage() {
  const codes = state.config.languages.map((l) => l.code);
  const saved = localStorage.getItem("mmed-lang");
  if (saved && codes.includes(saved)) return saved;
  for (const tag of navigator.languages || [navigator.language || "en"]) {
    const base = String(tag).toLowerCase().split("-")[0];
    if (codes.includes(base)) return base;
  }
  return "en";
}

function applyLanguage() {
  document.documentElement.lang = state.lang;
  document.title = t("title");
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  $("prompt").placeholder = t("placeholder");
  const examples = $("examples");
  examples.replaceChildren();
  for (const text of t("examples")) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "example";
    button.textContent = text;
    button.addEventListener("click", () => send(text));
    examples.append(button);
  }
  const notice = $("notice");
  notice.hidden = !state.config.notice;
  if (state.config.notice) notice.textContent = t("demo_notice");
}

function setStatus(text) {
  $("status").textContent = text;
}

function addMessage(role) {
  const item = document.createElement("li");
  item.className = `message ${role}`;
  const label = document.createElement("p");
  label.className = "who";
  label.textContent = role === "user" ? t("you") : t("assistant");
  const body = document.createElement("div");
  body.className = "body";
  const para = document.createElement("p");
  para.className = "text";
  const text = document.createTextNode("");
  para.append(text);
  body.append(para);
  item.append(label, body);
  $("log").append(item);
  item.scrollIntoView({ block: "end" });
  return { item, label, body, text };
}

function addExtra(reply, className, content) {
  const para = document.createElement("p");
  para.className = className;
  para.textContent = content.trim();
  reply.body.append(para);
}

function setBusy(busy) {
  $("send").hidden = busy;
  $("stop").hidden = !busy;
  $("prompt").readOnly = busy;
  if (!busy) $("prompt").focus();
}

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("key").value.trim();
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

async function errorText(resp) {
  if (resp.status === 429 || resp.status === 503) {
    const seconds = resp.headers.get("Retry-After") || "30";
    return t("busy", { seconds });
  }
  let message = `HTTP ${resp.status}`;
  try {
    const body = await resp.json();
    if (body && body.error && body.error.message) message = body.error.message;
  } catch (_) { /* not JSON */ }
  return t("error", { message });
}

// Splits an emergency answer into text and phone numbers (911, 116 123, 8-800-2000-122, #7119).
function phoneParts(text) {
  const parts = [];
  let last = 0;
  const number = /(?<![\p{L}\p{N}#+.,\/-])[#+]?\d(?:\d|[ -](?=\d)){1,16}(?![\p{L}\p{N}]|[.,]\d|\s?(?:h\b|hours|horas|heures|час|小时|時間))/gu;
  for (const m of text.matchAll(number)) {
    if (m.index > last) parts.push({ text: text.slice(last, m.index) });
    parts.push({ text: m[0], tel: m[0].replace(/[ -]/g, "").replace("#", "%23") });
    last = m.index + m[0].length;
  }
  if (last < text.length) parts.push({ text: text.slice(last) });
  return parts;
}

// Rewrites an emergency answer with its phone numbers as tel: links (every part inserted as text).
function linkPhones(reply) {
  const nodes = phoneParts(reply.text.data).map((part) => {
    if (!part.tel) return document.createTextNode(part.text);
    const link = document.createElement("a");
    link.href = `tel:${part.tel}`;
    link.textContent = part.text;
    return link;
  });
  reply.text.replaceWith(...nodes);
}

function markEmergency(reply) {
  reply.item.classList.add("emergency");
  reply.item.setAttribute("role", "alert");
  reply.label.textContent = t("emergency");
}

// Reads an SSE body and calls onEvent(object) for each `data:` event until [DONE].
async function readEvents(resp, onEvent) {
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    buffer += decoder.decode(value || new Uint8Array(), { stream: !done });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) !== -1) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      for (const line of block.split("\n")) {
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") return;
        onEvent(JSON.parse(data));
      }
    }
    if (done) return;
  }
}

// The first `limit` characters of `text`, counted as the server counts them (code points): never half an emoji.
function clip(text, limit) {
  const chars = Array.from(text);
  return chars.length > limit ? chars.slice(0, limit).join("") : text;
}

async function send(rawText) {
  const text = clip(rawText.trim(), state.config.limits.max_message_chars);
  if (!text || state.controller) return;
  const user = addMessage("user");
  user.text.appendData(text);
  $("prompt").value = "";
  $("examples-section").hidden = true;
  state.history.push({ role: "user", content: text });
  const reply = addMessage("assistant");
  reply.item.setAttribute("aria-busy", "true");
  reply.item.classList.add("pending");
  setStatus(t("writing"));
  state.controller = new AbortController();
  setBusy(true);
  let answer = "";
  try {
    const maxMessages = state.config.limits.max_messages;
    const resp = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: headers(),
      signal: state.controller.signal,
      body: JSON.stringify({
        messages: state.history.slice(-maxMessages),
        stream: true,
        language: state.lang,
        temperature: PAGE_TEMPERATURE,
      }),
    });
    if (!resp.ok) {
      state.history.pop();
      reply.item.classList.add("failed");
      reply.text.appendData(await errorText(resp));
      return;
    }
    await readEvents(resp, (event) => {
      if (event.error) throw new Error(event.error.message || "error");
      if (event.safety && event.safety.red_flag) markEmergency(reply);
      for (const choice of event.choices || []) {
        const piece = choice.delta && choice.delta.content;
        if (!piece) continue;
        reply.item.classList.remove("pending");
        if (event.part) {
          addExtra(reply, event.part === "disclaimer" ? "disclaimer" : "note", piece);
        } else {
          answer += piece;
          reply.text.appendData(piece);
        }
      }
      reply.item.scrollIntoView({ block: "end" });
    });
    if (reply.item.classList.contains("emergency")) linkPhones(reply);
    state.history.push({ role: "assistant", content: answer });
  } catch (err) {
    if (err.name === "AbortError") {
      addExtra(reply, "note", t("stopped"));
      if (answer) state.history.push({ role: "assistant", content: answer });
      else state.history.pop();
    } else {
      state.history.pop();
      reply.item.classList.add("failed");
      addExtra(reply, "note", t("error", { message: err.message }));
    }
  } finally {
    reply.item.classList.remove("pending");
    reply.item.setAttribute("aria-busy", "false");
    setStatus("");
    state.controller = null;
    setBusy(false);
  }
}

function newConversation() {
  if (state.controller) state.controller.abort();
  state.history = [];
  $("log").replaceChildren();
  $("examples-section").hidden = false;
  $("prompt").focus();
}

async function init() {
  const resp = await fetch("/api/config");
  state.config = await resp.json();
  const select = $("lang");
  for (const lang of state.config.languages) {
    const option = document.createElement("option");
    option.value = lang.code;
    option.textContent = lang.name;
    select.append(option);
  }
  state.lang = pickLanguage();
  select.value = state.lang;
  select.addEventListener("change", () => {
    state.lang = select.value;
    localStorage.setItem("mmed-lang", state.lang);
    applyLanguage();
  });
  $("model-name").textContent = state.config.prompt_format === "chat template" || !state.config.prompt_format
    ? state.config.model : `${state.config.model} (${state.config.prompt_format})`;
  $("key-row").hidden = !state.config.auth_required;
  $("prompt").maxLength = state.config.limits.max_message_chars;
  $("form").addEventListener("submit", (e) => {
    e.preventDefault();
    send($("prompt").value);
  });
  $("prompt").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send($("prompt").value);
    }
  });
  $("stop").addEventListener("click", () => state.controller && state.controller.abort());
  $("new").addEventListener("click", newConversation);
  applyLanguage();
  document.body.classList.add("ready");
}

init().catch((err) => {
  const notice = $("notice");
  notice.hidden = false;
  notice.textContent = `Could not load the page settings: ${err.message}`;
});

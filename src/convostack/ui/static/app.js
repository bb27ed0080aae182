// convostack's web UI: plain JavaScript, no framework, no build step. Pages are chosen
// by the URL's hash (#/conversations, #/conversations/ID, #/playground, #/responses,
// #/responses/ID); every page is built with DOM calls (never innerHTML), so text from
// the server is always shown as text.
"use strict";

const KEY_STORAGE = "convostack.apiKey";
// The API sits beside /ui, under the same prefix when a proxy adds one.
const API = location.pathname.replace(/\/ui\/?$/, "") + "/v1";

// --- small helpers ---------------------------------------------------------------

function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function field(label, input, hint) {
  const id = input.id || "f-" + Math.random().toString(36).slice(2);
  input.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, label), input,
    hint ? h("small", {}, hint) : null);
}

function when(seconds) {
  return new Date(seconds * 1000).toLocaleString();
}

function pretty(value) {
  return JSON.stringify(value, null, 2);
}

function raw(value, summary) {
  return h("details", { class: "raw" }, h("summary", {}, summary || "JSON"),
    h("pre", {}, pretty(value)));
}

function say(message, isError) {
  const status = document.getElementById("status");
  status.textContent = message;
  status.className = isError ? "error" : "";
  status.setAttribute("role", isError ? "alert" : "status");
}

function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE) || "";
}

function headers(extra) {
  const out = Object.assign({ "content-type": "application/json" }, extra || {});
  if (apiKey()) out.authorization = "Bearer " + apiKey();
  return out;
}

async function failure(response) {
  let message = response.status + " " + response.statusText;
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) message = body.error.message;
  } catch (_) { /* not JSON: the status line says enough */ }
  return new Error(message);
}

async function api(method, path, body) {
  const response = await fetch(API + path, {
    method, headers: headers(), body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw await failure(response);
  return response.json();
}

// Every page of a list, following `after` until `has_more` is false.
async function allPages(path) {
  const out = [];
  let after = "";
  for (;;) {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api("GET", path + sep + "limit=100" + (after ? "&after=" + encodeURIComponent(after) : ""));
    out.push(...page.data);
    if (!page.has_more || !page.data.length) return out;
    after = page.last_id;
  }
}

// Runs an action, showing what went wrong instead of failing silently.
function guarded(action) {
  return async (event) => {
    if (event && event.preventDefault) event.preventDefault();
    try {
      await action(event);
    } catch (error) {
      say(error.message, true);
    }
  };
}

// --- rendering items by type ------------------------------------------------------

function partText(part) {
  if (part.type === "input_text" || part.type === "output_text") return part.text;
  if (part.type === "refusal") return "(refused) " + part.refusal;
  if (part.type === "input_image") return "[image " + (part.image_url || part.file_id || "") + "]";
  if (part.type === "input_file") return "[file " + (part.filename || part.file_id || "") + "]";
  return "[" + part.type + "]";
}

function messageBody(item) {
  const content = typeof item.content === "string" ? [{ type: "input_text", text: item.content }] : item.content || [];
  return content.map((part) => h("p", { class: "text" }, partText(part)));
}

function kv(pairs) {
  return h("dl", { class: "kv" }, pairs.filter(([, v]) => v !== undefined && v !== null && v !== "")
    .map(([k, v]) => [h("dt", {}, k), h("dd", {}, typeof v === "string" ? v : pretty(v))]));
}

const RENDERERS = {
  message: (item) => [h("span", { class: "role" }, item.role), ...messageBody(item)],
  function_call: (item) => [kv([["call", item.name + "(" + item.arguments + ")"], ["call_id", item.call_id], ["status", item.status]])],
  function_call_output: (item) => [kv([["call_id", item.call_id], ["output", item.output]])],
  mcp_list_tools: (item) => [kv([["server", item.server_label], ["tools", (item.tools || []).map((t) => t.name).join(", ")], ["error", item.error]])],
  mcp_call: (item) => [kv([["server", item.server_label], ["call", item.name + "(" + item.arguments + ")"], ["output", item.output], ["error", item.error]])],
  mcp_approval_request: (item) => [kv([["server", item.server_label], ["asks to call", item.name + "(" + item.arguments + ")"]])],
  mcp_approval_response: (item) => [kv([["request", item.approval_request_id], ["approved", String(item.approve)], ["reason", item.reason]])],
  file_search_call: (item) => [kv([["queries", (item.queries || []).join("; ")], ["status", item.status]]),
    h("ol", { class: "results" }, (item.results || []).map((r) =>
      h("li", {}, h("strong", {}, (r.filename || r.file_id || "result") + (r.score !== undefined ? " (" + r.score + ")" : "")), " ", r.text || "")))],
  compaction: (item) => [h("p", { class: "muted" }, "Earlier turns compacted here" +
    (item.encrypted_content ? " (" + item.encrypted_content.length + " characters kept)" : "") + ".")],
  reasoning: (item) => (item.summary || []).map((s) => h("p", { class: "muted" }, s.text)),
};

function renderItem(item) {
  const render = RENDERERS[item.type];
  return h("article", { class: "item item-" + item.type, "data-type": item.type },
    h("header", {}, h("span", { class: "type" }, item.type), " ", h("code", {}, item.id || "")),
    render ? render(item) : null,
    raw(item));
}

// --- pages -----------------------------------------------------------------------

function metadataFromPairs(text) {
  // "key=value" per line, the form people type; empty lines skipped.
  const out = {};
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const at = line.indexOf("=");
    if (at < 1) throw new Error("Metadata lines are key=value: '" + line + "'");
    out[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return out;
}

function conversationRow(conversation, onDeleted) {
  const meta = Object.entries(conversation.metadata || {}).map(([k, v]) => k + "=" + v).join(", ");
  const row = h("li", { class: "row" },
    h("a", { href: "#/conversations/" + conversation.id }, conversation.id),
    h("span", { class: "muted" }, when(conversation.created_at)),
    h("span", { class: "meta" }, meta),
    h("button", {
      type: "button", class: "danger", "aria-label": "Delete " + conversation.id,
      onclick: guarded(async () => {
        await api("DELETE", "/conversations/" + conversation.id);
        row.remove();
        onDeleted(conversation.id);
      }),
    }, "Delete"));
  return row;
}

async function conversationsPage(main) {
  const list = h("ul", { class: "rows", id: "conversation-list", "aria-label": "Conversations" });
  const more = h("button", { type: "button", id: "more", hidden: true }, "More");
  const filterKey = h("input", { id: "filter-key", placeholder: "topic" });
  const filterValue = h("input", { id: "filter-value", placeholder: "demo" });
  const newMeta = h("textarea", { id: "new-metadata", rows: 2, placeholder: "topic=demo" });
  let after = "";

  const load = async (reset) => {
    if (reset) { list.replaceChildren(); after = ""; }
    const query = new URLSearchParams({ limit: "20" });
    if (after) query.set("after", after);
    if (filterKey.value.trim()) query.set("metadata[" + filterKey.value.trim() + "]", filterValue.value);
    const page = await api("GET", "/conversations?" + query);
    for (const c of page.data) list.append(conversationRow(c, () => say("Deleted " + c.id + ".")));
    after = page.last_id;
    more.hidden = !page.has_more;
    if (!list.children.length) list.append(h("li", { class: "muted" }, "No conversations yet."));
  };
  more.addEventListener("click", guarded(() => load(false)));

  main.append(
    h("h1", {}, "Conversations"),
    h("form", { class: "inline", id: "filter-form", onsubmit: guarded(() => load(true)) },
      field("Metadata key", filterKey), field("equals", filterValue),
      h("button", { type: "submit" }, "Filter")),
    h("form", {
      id: "create-form",
      onsubmit: guarded(async () => {
        const created = await api("POST", "/conversations", { metadata: metadataFromPairs(newMeta.value) });
        say("Created " + created.id + ".");
        location.hash = "#/conversations/" + created.id;
      }),
    }, field("Metadata of a new conversation", newMeta, "one key=value per line, optional"),
    h("button", { type: "submit" }, "Create conversation")),
    list, more);
  await load(true);
}

async function conversationPage(main, id) {
  const conversation = await api("GET", "/conversations/" + id);
  const items = h("section", { id: "items", "aria-label": "Items" });
  const metaBox = h("textarea", { id: "metadata", rows: 3 });
  metaBox.value = Object.entries(conversation.metadata).map(([k, v]) => k + "=" + v).join("\n");
  const role = h("select", { id: "add-role" }, ["user", "assistant", "system", "developer"].map((r) => h("option", {}, r)));
  const text = h("textarea", { id: "add-text", rows: 3, required: true });

  const loadItems = async () => {
    const all = await allPages("/conversations/" + id + "/items?order=asc");
    items.replaceChildren(h("h2", {}, "Items (" + all.length + ")"),
      ...(all.length ? all.map(renderItem) : [h("p", { class: "muted" }, "No items yet.")]));
  };

  main.append(
    h("h1", {}, "Conversation ", h("code", {}, id)),
    h("p", { class: "muted" }, "Created " + when(conversation.created_at) + ". ",
      h("a", { href: "#/playground?conversation=" + id }, "Continue it in the playground")),
    h("form", {
      id: "metadata-form",
      onsubmit: guarded(async () => {
        await api("POST", "/conversations/" + id, { metadata: metadataFromPairs(metaBox.value) });
        say("Metadata saved.");
      }),
    }, field("Metadata", metaBox, "one key=value per line"), h("button", { type: "submit" }, "Save metadata")),
    items,
    h("form", {
      id: "add-form",
      onsubmit: guarded(async () => {
        await api("POST", "/conversations/" + id + "/items", { items: [{ type: "message", role: role.value, content: text.value }] });
        text.value = "";
        await loadItems();
        say("Message added.");
      }),
    }, h("h2", {}, "Add a message"), field("Role", role), field("Text", text), h("button", { type: "submit" }, "Add message")),
    h("button", {
      type: "button", class: "danger", id: "delete-conversation",
      onclick: guarded(async () => {
        await api("DELETE", "/conversations/" + id);
        say("Deleted " + id + ".");
        location.hash = "#/conversations";
      }),
    }, "Delete this conversation"));
  await loadItems();
}

// Reads a server-sent event stream, calling `onEvent` with each event's parsed data.
async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
      if (data && data !== "[DONE]") onEvent(JSON.parse(data));
    }
  }
}

async function playgroundPage(main, params) {
  const models = await api("GET", "/models");
  const model = h("select", { id: "model" }, models.data.map((m) => h("option", { value: m.id }, m.id)));
  const conversation = h("input", { id: "conversation", placeholder: "conv_... (empty: a turn alone)", value: params.get("conversation") || "" });
  const instructions = h("textarea", { id: "instructions", rows: 2 });
  const temperature = h("input", { id: "temperature", type: "number", min: "0", max: "2", step: "0.1", placeholder: "model default" });
  const tools = h("textarea", { id: "tools", rows: 3, placeholder: '[{"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}]' });
  const input = h("textarea", { id: "input", rows: 3, required: true });
  const send = h("button", { type: "submit", id: "send" }, "Send");
  const answer = h("div", { id: "answer", class: "answer", "aria-live": "polite", "aria-busy": "false" });
  const outcome = h("p", { id: "outcome", class: "muted" });

  const run = async () => {
    const body = { model: model.value, input: input.value, stream: true };
    if (conversation.value.trim()) body.conversation = conversation.value.trim();
    if (instructions.value.trim()) body.instructions = instructions.value;
    if (temperature.value !== "") body.temperature = Number(temperature.value);
    if (tools.value.trim()) {
      try { body.tools = JSON.parse(tools.value); } catch (error) { throw new Error("Tools are not valid JSON: " + error.message); }
    }
    answer.replaceChildren();
    outcome.textContent = "";
    send.disabled = true;
    answer.setAttribute("aria-busy", "true");
    let text = null;
    try {
      const response = await fetch(API + "/responses", { method: "POST", headers: headers({ accept: "text/event-stream" }), body: JSON.stringify(body) });
      if (!response.ok) throw await failure(response);
      await readEvents(response, (event) => {
        if (event.type === "response.output_text.delta") {
          if (text === null) { text = h("p", { class: "text" }); answer.append(text); }
          text.textContent += event.delta;
        } else if (event.type === "response.output_item.done" && event.item.type !== "message") {
          answer.append(renderItem(event.item));
        } else if (event.type === "response.output_item.added") {
          text = null;
        } else if (event.type === "response.completed" || event.type === "response.incomplete" || event.type === "response.failed") {
          const r = event.response;
          outcome.replaceChildren(r.status + " by " + r.model + " · ",
            h("a", { href: "#/responses/" + r.id }, r.id),
            r.usage ? " · " + r.usage.input_tokens + " in, " + r.usage.output_tokens + " out" : "",
            r.error ? " · " + r.error.message : "");
        } else if (event.type === "error") {
          throw new Error(event.message || (event.error && event.error.message) || "stream error");
        }
      });
      input.value = "";
    } finally {
      send.disabled = false;
      answer.setAttribute("aria-busy", "false");
    }
  };

  main.append(
    h("h1", {}, "Playground"),
    h("form", { id: "playground-form", onsubmit: guarded(run) },
      field("Model", model), field("Conversation", conversation),
      field("Instructions", instructions), field("Temperature", temperature),
      field("Tools (JSON array)", tools), field("Message", input), send),
    h("h2", {}, "Answer"), answer, outcome);
}

async function responsesPage(main) {
  const list = h("ul", { class: "rows", id: "response-list", "aria-label": "Stored responses" });
  const more = h("button", { type: "button", id: "more", hidden: true }, "More");
  let after = "";
  const load = async () => {
    const page = await api("GET", "/responses?limit=20" + (after ? "&after=" + encodeURIComponent(after) : ""));
    for (const r of page.data) {
      list.append(h("li", { class: "row" }, h("a", { href: "#/responses/" + r.id }, r.id),
        h("span", { class: "muted" }, when(r.created_at)), h("span", {}, r.model + " · " + r.status),
        h("span", { class: "meta" }, (r.output_text || firstText(r)).slice(0, 80))));
    }
    after = page.last_id;
    more.hidden = !page.has_more;
    if (!list.children.length) list.append(h("li", { class: "muted" }, "No stored responses yet."));
  };
  more.addEventListener("click", guarded(load));
  main.append(h("h1", {}, "Stored responses"), list, more);
  await load();
}

function firstText(response) {
  for (const item of response.output || []) {
    for (const part of item.content || []) if (part.text) return part.text;
  }
  return "";
}

async function responsePage(main, id) {
  const response = await api("GET", "/responses/" + id);
  const inputs = await allPages("/responses/" + id + "/input_items?order=asc");
  const events = h("ol", { id: "events", class: "events" });
  main.append(
    h("h1", {}, "Response ", h("code", {}, id)),
    kv([["model", response.model], ["status", response.status], ["created", when(response.created_at)],
      ["conversation", response.conversation && response.conversation.id],
      ["previous response", response.previous_response_id], ["instructions", response.instructions]]),
    h("h2", {}, "Input items (" + inputs.length + ")"), ...inputs.map(renderItem),
    h("h2", {}, "Output"), ...(response.output || []).map(renderItem),
    h("h2", {}, "Events"),
    h("button", {
      type: "button", id: "show-events",
      onclick: guarded(async (event) => {
        event.target.disabled = true;
        const replay = await fetch(API + "/responses/" + id + "?stream=true", { headers: headers() });
        if (!replay.ok) throw await failure(replay);
        await readEvents(replay, (e) => events.append(h("li", {}, h("code", {}, e.type), e.delta ? " " + e.delta : "")));
      }),
    }, "Replay its events"),
    events,
    raw(response, "The whole response as JSON"),
    h("button", {
      type: "button", class: "danger",
      onclick: guarded(async () => {
        await api("DELETE", "/responses/" + id);
        say("Deleted " + id + ".");
        location.hash = "#/responses";
      }),
    }, "Delete this response"));
}

// --- routing ---------------------------------------------------------------------

const PAGES = [
  [/^#\/conversations\/([^/?]+)$/, (main, m) => conversationPage(main, decodeURIComponent(m[1]))],
  [/^#\/playground(?:\?(.*))?$/, (main, m) => playgroundPage(main, new URLSearchParams(m[1] || ""))],
  [/^#\/responses\/([^/?]+)$/, (main, m) => responsePage(main, decodeURIComponent(m[1]))],
  [/^#\/responses$/, (main) => responsesPage(main)],
  [/^.*$/, (main) => conversationsPage(main)],
];

async function show() {
  const main = document.getElementById("main");
  main.replaceChildren();
  main.setAttribute("aria-busy", "true");
  const hash = location.hash || "#/conversations";
  for (const link of document.querySelectorAll("nav a")) {
    const current = hash.startsWith(link.getAttribute("href"));
    if (current) link.setAttribute("aria-current", "page"); else link.removeAttribute("aria-current");
  }
  for (const [pattern, page] of PAGES) {
    const match = hash.match(pattern);
    if (!match) continue;
    try {
      await page(main, match);
    } catch (error) {
      say(error.message, true);
      main.append(h("p", { class: "error" }, error.message));
    }
    break;
  }
  main.setAttribute("aria-busy", "false");
}

function start() {
  const keyInput = document.getElementById("api-key");
  keyInput.value = apiKey();
  document.getElementById("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY_STORAGE, keyInput.value.trim());
    say(keyInput.value.trim() ? "Key kept for this tab." : "Key cleared.");
    show();
  });
  document.getElementById("skip").addEventListener("click", (event) => {
    event.preventDefault();
    document.getElementById("main").focus();
  });
  window.addEventListener("hashchange", () => {
    say("");
    show().then(() => document.getElementById("main").focus({ preventScroll: true }));
  });
  show();
}

start();

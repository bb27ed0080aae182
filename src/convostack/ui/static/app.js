// convostack's web UI: plain JavaScript, no framework, no build step. Pages are chosen
// by the URL's hash (#/conversations, #/conversations/ID, #/playground, #/responses,
// #/responses/ID, #/files, #/files/ID, #/vector_stores, #/vector_stores/ID); every page
// is built with DOM calls (never innerHTML), so text from the server is always shown as
// text.
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

function authHeaders(extra) {
  const out = Object.assign({}, extra || {});
  if (apiKey()) out.authorization = "Bearer " + apiKey();
  return out;
}

function headers(extra) {
  return authHeaders(Object.assign({ "content-type": "application/json" }, extra || {}));
}

async function failure(response) {
  let message = response.status + " " + response.statusText;
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) message = body.error.message;
  } catch (_) { /* not JSON: the status line says enough */ }
  return new Error(message);
}

// A JSON body is sent as JSON; a FormData as multipart (the browser sets its boundary).
async function api(method, path, body) {
  const form = body instanceof FormData;
  const response = await fetch(API + path, {
    method, headers: form ? authHeaders() : headers(),
    body: body === undefined || form ? body : JSON.stringify(body),
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

// A list shown 20 at a time, the next page on "More". `path()` gives the list's route
// with its filters; `row(object)` renders one entry. `load(true)` starts again.
function pagedList(id, label, empty, path, row) {
  const list = h("ul", { class: "rows", id, "aria-label": label });
  const more = h("button", { type: "button", id: "more", hidden: true }, "More");
  let after = "";
  const load = async (reset) => {
    if (reset) { list.replaceChildren(); after = ""; }
    const base = path();
    const page = await api("GET", base + (base.includes("?") ? "&" : "?") + "limit=20" +
      (after ? "&after=" + encodeURIComponent(after) : ""));
    for (const object of page.data) list.append(row(object));
    after = page.last_id;
    more.hidden = !page.has_more;
    if (!list.children.length) list.append(h("li", { class: "muted" }, empty));
  };
  more.addEventListener("click", guarded(() => load(false)));
  return { list, more, load };
}

// A button that removes `id` (DELETE `path`), then its row, and says so.
function removeButton(verb, done, id, path, row, then) {
  return h("button", {
    type: "button", class: "danger", "aria-label": verb + " " + id,
    onclick: guarded(async () => {
      await api("DELETE", path);
      row.remove();
      say(done + " " + id + ".");
      if (then) await then();
    }),
  }, verb);
}

// On an object's own page: delete it, then go back to its list.
function deleteThis(what, id, path, back) {
  return h("button", {
    type: "button", class: "danger", id: "delete-" + what.replace(/ /g, "-"),
    onclick: guarded(async () => {
      await api("DELETE", path);
      say("Deleted " + id + ".");
      location.hash = back;
    }),
  }, "Delete this " + what);
}

// One entry of a list: a link to its page, when it was made, a summary, Delete.
function listRow(object, href, title, summary, deletePath) {
  const row = h("li", { class: "row" },
    h("a", { href }, title),
    h("span", { class: "muted" }, when(object.created_at)),
    h("span", { class: "meta" }, summary));
  row.append(removeButton("Delete", "Deleted", object.id, deletePath, row));
  return row;
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

// Search results, as a vector store's search gives them (`content` parts) and as a
// file_search_call item keeps them (`text`): best first, each its file, score and text.
function searchResults(results, attrs) {
  return h("ol", Object.assign({ class: "results" }, attrs), results.map((r) => h("li", {},
    h("strong", {}, r.filename || r.file_id || "result"),
    typeof r.score === "number" ? " (" + Number(r.score.toFixed(3)) + ")" : "",
    r.file_id ? [" ", h("a", { href: "#/files/" + r.file_id }, h("code", {}, r.file_id))] : null,
    h("p", { class: "chunk" }, r.text !== undefined ? r.text : (r.content || []).map((c) => c.text).join("\n")))));
}

function fileSearchCall(item) {
  const queries = item.queries || [];
  let results;
  if (item.results && item.results.length) results = searchResults(item.results);
  else if (item.results) results = h("p", { class: "muted" }, "Nothing found.");
  else if (item.status === "completed") {
    results = h("p", { class: "muted" }, "Results not kept (a turn keeps them with include: file_search_call.results).");
  }
  return [kv([["status", item.status]]),
    queries.length ? h("p", { class: "queries" }, "Searched for ", queries.map((q, n) => [n ? ", " : "", h("q", {}, q)])) : null,
    results];
}

const RENDERERS = {
  message: (item) => [h("span", { class: "role" }, item.role), ...messageBody(item)],
  function_call: (item) => [kv([["call", item.name + "(" + item.arguments + ")"], ["call_id", item.call_id], ["status", item.status]])],
  function_call_output: (item) => [kv([["call_id", item.call_id], ["output", item.output]])],
  mcp_list_tools: (item) => [kv([["server", item.server_label], ["tools", (item.tools || []).map((t) => t.name).join(", ")], ["error", item.error]])],
  mcp_call: (item) => [kv([["server", item.server_label], ["call", item.name + "(" + item.arguments + ")"], ["output", item.output], ["error", item.error]])],
  mcp_approval_request: (item) => [kv([["server", item.server_label], ["asks to call", item.name + "(" + item.arguments + ")"]])],
  mcp_approval_response: (item) => [kv([["request", item.approval_request_id], ["approved", String(item.approve)], ["reason", item.reason]])],
  file_search_call: fileSearchCall,
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

function conversationRow(conversation) {
  const meta = Object.entries(conversation.metadata || {}).map(([k, v]) => k + "=" + v).join(", ");
  return listRow(conversation, "#/conversations/" + conversation.id, conversation.id, meta,
    "/conversations/" + conversation.id);
}

async function conversationsPage(main) {
  const filterKey = h("input", { id: "filter-key", placeholder: "topic" });
  const filterValue = h("input", { id: "filter-value", placeholder: "demo" });
  const newMeta = h("textarea", { id: "new-metadata", rows: 2, placeholder: "topic=demo" });
  const { list, more, load } = pagedList("conversation-list", "Conversations", "No conversations yet.", () => {
    const key = filterKey.value.trim();
    return "/conversations" + (key ? "?" + new URLSearchParams({ ["metadata[" + key + "]"]: filterValue.value }) : "");
  }, conversationRow);

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
    deleteThis("conversation", id, "/conversations/" + id, "#/conversations"));
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
      // A file search's results are shown (and kept) only when asked for.
      if (Array.isArray(body.tools) && body.tools.some((t) => t && t.type === "file_search")) {
        body.include = ["file_search_call.results"];
      }
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
      field("Tools (JSON array)", tools, 'a file_search tool, {"type": "file_search", "vector_store_ids": ["vs_..."]}, also shows its results'),
      field("Message", input), send),
    h("h2", {}, "Answer"), answer, outcome);
}

async function responsesPage(main) {
  const { list, more, load } = pagedList("response-list", "Stored responses", "No stored responses yet.",
    () => "/responses", (r) => h("li", { class: "row" }, h("a", { href: "#/responses/" + r.id }, r.id),
      h("span", { class: "muted" }, when(r.created_at)), h("span", {}, r.model + " · " + r.status),
      h("span", { class: "meta" }, (r.output_text || firstText(r)).slice(0, 80))));
  main.append(h("h1", {}, "Stored responses"), list, more);
  await load(true);
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
    deleteThis("response", id, "/responses/" + id, "#/responses"));
}

// --- files and vector stores -----------------------------------------------------

const PURPOSES = ["assistants", "user_data", "batch", "fine-tune", "vision", "evals"];

function size(bytes) {
  if (bytes < 1024) return bytes + " bytes";
  if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(1) + " KiB";
  return (bytes / 1024 / 1024).toFixed(1) + " MiB";
}

function purposeSelect(id, anyLabel) {
  return h("select", { id }, anyLabel ? h("option", { value: "" }, anyLabel) : null,
    PURPOSES.map((p) => h("option", {}, p)));
}

// The newest files, to pick from when making or filling a vector store.
async function newestFiles() {
  return (await api("GET", "/files?limit=100")).data;
}

// A file's bytes, fetched with the key (a plain link could not send it), saved under its name.
async function download(file) {
  const response = await fetch(API + "/files/" + file.id + "/content", { headers: authHeaders() });
  if (!response.ok) throw await failure(response);
  const url = URL.createObjectURL(await response.blob());
  const link = h("a", { href: url, download: file.filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
  say("Downloaded " + file.filename + ".");
}

async function filesPage(main) {
  const shown = purposeSelect("purpose-filter", "any");
  const { list, more, load } = pagedList("file-list", "Files", "No files yet.",
    () => "/files" + (shown.value ? "?purpose=" + encodeURIComponent(shown.value) : ""),
    (f) => listRow(f, "#/files/" + f.id, f.filename, [f.id, f.purpose, size(f.bytes)].join(" · "), "/files/" + f.id));
  shown.addEventListener("change", guarded(() => load(true)));
  const chosen = h("input", { id: "upload-file", type: "file", required: true });
  const purpose = purposeSelect("upload-purpose");
  const upload = h("button", { type: "submit" }, "Upload");

  main.append(
    h("h1", {}, "Files"),
    h("form", {
      class: "inline", id: "upload-form",
      onsubmit: guarded(async () => {
        const form = new FormData();
        form.append("purpose", purpose.value);
        form.append("file", chosen.files[0]);
        upload.disabled = true;
        try {
          const created = await api("POST", "/files", form);
          say("Uploaded " + created.filename + " as " + created.id + ".");
        } finally {
          upload.disabled = false;
        }
        chosen.value = "";
        await load(true);
      }),
    }, field("File to upload", chosen), field("Purpose", purpose), upload),
    h("form", { class: "inline", id: "files-filter", onsubmit: guarded(() => load(true)) },
      field("Show purpose", shown), h("button", { type: "submit" }, "Show")),
    list, more);
  await load(true);
}

async function filePage(main, id) {
  const file = await api("GET", "/files/" + id);
  main.append(
    h("h1", {}, "File ", h("code", {}, id)),
    kv([["name", file.filename], ["purpose", file.purpose], ["size", size(file.bytes)],
      ["created", when(file.created_at)], ["expires", file.expires_at && when(file.expires_at)],
      ["status", file.status]]),
    h("p", {}, h("button", { type: "button", id: "download", onclick: guarded(() => download(file)) }, "Download")),
    raw(file),
    deleteThis("file", id, "/files/" + id, "#/files"));
}

function storeSummary(store) {
  const counts = store.file_counts;
  const parts = [counts.total + (counts.total === 1 ? " file" : " files"), store.status, size(store.usage_bytes)];
  if (counts.in_progress) parts.push(counts.in_progress + " in progress");
  if (counts.failed) parts.push(counts.failed + " failed");
  return parts.join(" · ");
}

async function vectorStoresPage(main) {
  const { list, more, load } = pagedList("store-list", "Vector stores", "No vector stores yet.",
    () => "/vector_stores", (s) => listRow(s, "#/vector_stores/" + s.id, s.name || s.id,
      s.id + " · " + storeSummary(s), "/vector_stores/" + s.id));
  const name = h("input", { id: "store-name", placeholder: "handbook" });
  const files = await newestFiles();
  const picks = files.map((f) => h("input", { type: "checkbox", id: "pick-" + f.id, value: f.id }));
  const choices = h("fieldset", { class: "choices" }, h("legend", {}, "Files to add"),
    files.length ? picks.map((box, n) => h("div", { class: "check" }, box,
      h("label", { for: box.id }, files[n].filename, " ", h("code", {}, files[n].id))))
      : h("p", { class: "muted" }, "No files yet: upload some on the ", h("a", { href: "#/files" }, "Files"), " page."));

  main.append(
    h("h1", {}, "Vector stores"),
    h("form", {
      id: "create-store-form",
      onsubmit: guarded(async () => {
        const fileIds = picks.filter((box) => box.checked).map((box) => box.value);
        const created = await api("POST", "/vector_stores", { name: name.value.trim() || undefined, file_ids: fileIds });
        say("Created " + created.id + ".");
        location.hash = "#/vector_stores/" + created.id;
      }),
    }, field("Name of a new vector store", name), choices, h("button", { type: "submit" }, "Create vector store")),
    list, more);
  await load(true);
}

// One file of a vector store: its name (looked up), status, and, while it is being
// ingested, watched until it is done, when `onSettled` runs.
function storeFileRow(storeId, file, onSettled) {
  const path = "/vector_stores/" + storeId + "/files/" + file.id;
  const link = h("a", { href: "#/files/" + file.id }, file.id);
  const status = h("span", { class: "file-status" });
  const meta = h("span", { class: "meta" });
  const row = h("li", { class: "row", "data-file": file.id }, link, status, meta);
  row.append(removeButton("Detach", "Detached", file.id, path, row, onSettled));
  const paint = (f) => {
    status.className = "file-status status-" + f.status;
    status.replaceChildren(f.status, f.last_error ? ": " + f.last_error.message + " (" + f.last_error.code + ")" : "");
    meta.textContent = [f.id, size(f.usage_bytes),
      ...Object.entries(f.attributes || {}).map(([k, v]) => k + "=" + v)].join(" · ");
  };
  paint(file);
  // Without its name (an error), the row keeps showing the id.
  api("GET", "/files/" + file.id).then((f) => { link.textContent = f.filename; }, () => {});
  const watchIn = (ms) => setTimeout(guarded(async () => {
    if (!row.isConnected) return; // the page was left, the list reloaded or the row removed
    const now = await api("GET", path);
    paint(now);
    if (now.status === "in_progress") watchIn(1000); else await onSettled();
  }), ms);
  if (file.status === "in_progress") watchIn(500);
  return row;
}

async function vectorStorePage(main, id) {
  const path = "/vector_stores/" + id;
  const store = await api("GET", path);
  const summary = h("p", { id: "store-summary", class: "muted" });
  const refresh = async () => { summary.textContent = storeSummary(await api("GET", path)); };
  const { list, more, load } = pagedList("store-files", "Files in this store", "No files in this store yet.",
    () => path + "/files", (f) => storeFileRow(id, f, () => refresh()));

  const files = await newestFiles();
  const pick = h("select", { id: "attach-file", required: true },
    files.map((f) => h("option", { value: f.id }, f.filename + " (" + f.id + ")")));
  const query = h("input", { id: "search-query", type: "search", required: true });
  const count = h("input", { id: "search-count", type: "number", min: "1", max: "50", value: "5" });
  const results = h("div", { id: "search-results", "aria-live": "polite" });

  main.append(
    h("h1", {}, "Vector store ", h("code", {}, id)),
    h("p", {}, h("strong", {}, store.name || "(no name)"), " · created " + when(store.created_at)),
    summary,
    h("h2", {}, "Files"),
    list, more,
    files.length ? h("form", {
      class: "inline", id: "attach-form",
      onsubmit: guarded(async () => {
        await api("POST", path + "/files", { file_id: pick.value });
        say("Added " + pick.value + "; it is being ingested.");
        await load(true);
        await refresh();
      }),
    }, field("File to add", pick), h("button", { type: "submit" }, "Add file"))
      : h("p", { class: "muted" }, "Upload files on the ", h("a", { href: "#/files" }, "Files"), " page to add them here."),
    h("h2", {}, "Search"),
    h("form", {
      class: "inline", id: "search-form", role: "search",
      onsubmit: guarded(async () => {
        const found = await api("POST", path + "/search", { query: query.value, max_num_results: Number(count.value) || 5 });
        results.replaceChildren(found.data.length
          ? searchResults(found.data, { "aria-label": "Search results" })
          : h("p", { class: "muted" }, "Nothing found for “" + query.value + "”."));
      }),
    }, field("Search this store", query), field("Results at most", count), h("button", { type: "submit" }, "Search")),
    results,
    raw(store, "The vector store as JSON"),
    deleteThis("vector store", id, path, "#/vector_stores"));
  // The files first: any still in progress then is watched, and refreshes the summary.
  await load(true);
  await refresh();
}

// --- routing ---------------------------------------------------------------------

const PAGES = [
  [/^#\/conversations\/([^/?]+)$/, (main, m) => conversationPage(main, decodeURIComponent(m[1]))],
  [/^#\/playground(?:\?(.*))?$/, (main, m) => playgroundPage(main, new URLSearchParams(m[1] || ""))],
  [/^#\/responses\/([^/?]+)$/, (main, m) => responsePage(main, decodeURIComponent(m[1]))],
  [/^#\/responses$/, (main) => responsesPage(main)],
  [/^#\/files\/([^/?]+)$/, (main, m) => filePage(main, decodeURIComponent(m[1]))],
  [/^#\/files$/, (main) => filesPage(main)],
  [/^#\/vector_stores\/([^/?]+)$/, (main, m) => vectorStorePage(main, decodeURIComponent(m[1]))],
  [/^#\/vector_stores$/, (main) => vectorStoresPage(main)],
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

/* Tandem support chat widget: one script tag, no build step.
 *
 *   <script src="https://support.example.com/widget/tandem.js"
 *           data-api-base="https://support.example.com" data-key="<chat key>"
 *           data-title="Help" data-greeting="Hi! Ask me anything about Kestrel."
 *           data-accent="#0b5cad" data-contact-label="Your email" data-contact-type="email"
 *           defer></script>
 *
 * or set `window.TandemWidgetConfig = {apiBase, key, title, greeting, contactLabel,
 * contactType, colors: {accent, accentText, background, text}}` before the script.
 * After an answer Tandem could only suggest pages for, or declined, and after a thumbs down,
 * the widget offers "Talk to a person": the contact (an email by default; `contactType`
 * "text" or "tel" and `contactLabel` for whatever the site's help desk uses) and an optional
 * note go to `POST /v1/handoff` with the conversation. The key must be a chat key (it is
 * public). Everything the customer or the model writes is put in the page as text nodes;
 * nothing is ever parsed as HTML.
 */
(() => {
  "use strict";
  if (customElements.get("tandem-chat")) return;

  const script = document.currentScript;
  const STALL_MS = 90000; // no byte for this long: the stream is dead
  const MAX_TURNS = 20; // messages sent as history
  const HANDOFF_CHARS = 30000; // a handoff's transcript is cut (oldest first) to this size
  const HANDOFF_OUTCOMES = new Set(["suggested", "declined"]);
  const CITE = /\[(\d+)\]/g;
  const STEP = /^\s*(\d+)[.)]\s+(.*)$/;

  const CSS = `
:host { all: initial; --accent: #0b5cad; --accent-text: #fff; --bg: #fff; --text: #1d2330;
  --muted: #5a6475; --line: #d5dae3; --error: #a4161a; position: fixed; z-index: 2147483000;
  right: 16px; bottom: 16px; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
  color: var(--text); }
* { box-sizing: border-box; }
button, textarea { font: inherit; color: inherit; }
.launcher { background: var(--accent); color: var(--accent-text); border: 0; border-radius: 999px;
  padding: 12px 18px; cursor: pointer; box-shadow: 0 4px 14px rgb(0 0 0 / .2); }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.panel { position: absolute; right: 0; bottom: 0; width: min(400px, calc(100vw - 32px));
  height: min(600px, calc(100vh - 32px)); display: flex; flex-direction: column;
  background: var(--bg); border: 1px solid var(--line); border-radius: 12px;
  box-shadow: 0 8px 30px rgb(0 0 0 / .25); overflow: hidden; transition: opacity .15s; }
.panel[hidden] { display: none; }
header { display: flex; align-items: center; gap: 8px; padding: 10px 12px;
  background: var(--accent); color: var(--accent-text); }
.titles { flex: 1; }
header h2 { font-size: 16px; margin: 0; }
header p { margin: 0; font-size: 12px; opacity: .9; }
.close { background: transparent; border: 0; color: inherit; font-size: 22px; cursor: pointer;
  min-width: 44px; min-height: 44px; }
.log { flex: 1; overflow-y: auto; padding: 12px; display: flex; flex-direction: column; gap: 10px; }
.msg { max-width: 92%; padding: 8px 12px; border-radius: 10px; overflow-wrap: anywhere; }
.msg p { margin: 0 0 6px; }
.msg ol { margin: 0 0 6px; padding-left: 22px; }
.user { align-self: flex-end; background: var(--accent); color: var(--accent-text); white-space: pre-wrap; }
.assistant { align-self: flex-start; background: #f1f3f7; }
.cite { border: 1px solid var(--accent); background: var(--bg); color: var(--accent);
  border-radius: 4px; padding: 0 4px; font-size: 12px; cursor: pointer; min-height: 24px; }
.sources { font-size: 13px; margin: 6px 0 0; padding-left: 0; list-style: none; }
.sources li { border-top: 1px solid var(--line); padding: 4px 0; }
.sources summary { cursor: pointer; }
.sources .snippet { color: var(--muted); white-space: pre-wrap; margin: 4px 0 0; }
.meta { font-size: 12px; color: var(--muted); margin-top: 4px; }
.thinking { color: var(--muted); }
.thinking::after { content: "…"; display: inline-block; animation: blink 1s steps(2) infinite; }
@keyframes blink { 50% { opacity: 0; } }
.rate { display: flex; flex-wrap: wrap; gap: 6px; align-items: center; margin-top: 6px; font-size: 13px; }
.rate button, .status button, .comment button { border: 1px solid var(--line); background: var(--bg);
  border-radius: 6px; padding: 4px 10px; cursor: pointer; min-height: 36px; }
.rate button[aria-pressed="true"] { border-color: var(--accent); background: #e6effa; }
.comment { display: flex; flex-direction: column; gap: 6px; width: 100%; }
[hidden] { display: none !important; }
.suggestions { margin: 4px 0 6px; padding-left: 20px; font-size: 14px; }
.suggestion-link { background: none; border: 0; padding: 0; color: var(--accent); text-decoration: underline; cursor: pointer; font: inherit; text-align: left; }
.handoff { margin-top: 8px; border-top: 1px solid var(--line); padding-top: 6px; font-size: 14px; }
.handoff .open { border: 1px solid var(--accent); background: var(--bg); color: var(--accent);
  border-radius: 6px; padding: 4px 12px; cursor: pointer; min-height: 36px; }
.handoff form { flex-direction: column; padding: 6px 0 0; border-top: 0; gap: 4px; }
.handoff input, .handoff textarea { width: 100%; border: 1px solid var(--line); border-radius: 6px;
  padding: 6px 8px; min-height: 36px; background: var(--bg); font: inherit; color: inherit; }
.handoff .actions { display: flex; gap: 8px; flex-wrap: wrap; margin-top: 4px; }
.handoff .actions button { padding: 0 12px; min-height: 40px; }
.handoff .actions .cancel { background: var(--bg); color: var(--text); border: 1px solid var(--line); }
.handoff .problem { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; }
.handoff .problem button { border: 1px solid var(--line); background: var(--bg); color: var(--text);
  border-radius: 6px; padding: 4px 10px; min-height: 36px; }
.error-text { color: var(--error); }
.status { padding: 8px 12px; border-top: 1px solid var(--line); display: flex; gap: 8px;
  align-items: center; flex-wrap: wrap; }
.status[hidden] { display: none; }
form { display: flex; gap: 8px; padding: 10px 12px; border-top: 1px solid var(--line); }
form textarea { flex: 1; resize: none; border: 1px solid var(--line); border-radius: 8px;
  padding: 8px; min-height: 44px; max-height: 120px; background: var(--bg); }
form button { background: var(--accent); color: var(--accent-text); border: 0; border-radius: 8px;
  padding: 0 16px; min-height: 44px; cursor: pointer; }
button:disabled { opacity: .55; cursor: not-allowed; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
@media (max-width: 480px) {
  :host { right: 8px; bottom: 8px; }
  .panel { position: fixed; inset: 0; width: 100vw; height: 100%; border-radius: 0; border: 0; }
}
@media (prefers-reduced-motion: reduce) {
  .panel { transition: none; }
  .thinking::after { animation: none; }
}`;

  function readConfig() {
    const data = (script && script.dataset) || {};
    const given = window.TandemWidgetConfig || {};
    const origin = script && script.src ? new URL(script.src, location.href).origin : location.origin;
    return {
      apiBase: String(given.apiBase || data.apiBase || origin).replace(/\/+$/, ""),
      key: given.key || data.key || null,
      title: given.title || data.title || "Support",
      greeting: given.greeting || data.greeting || "Hi! Ask a question about the product.",
      contactLabel: given.contactLabel || data.contactLabel || "Your email",
      contactType: ["email", "tel", "text"].includes(given.contactType || data.contactType)
        ? (given.contactType || data.contactType) : "email",
      colors: Object.assign({ accent: data.accent }, given.colors || {}),
    };
  }

  /* The DOM, built with createElement and text nodes only. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") node.textContent = value;
      else if (name === "on") Object.entries(value).forEach(([ev, fn]) => node.addEventListener(ev, fn));
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  /* SSE over fetch: yields {event, data} for each `event:`/`data:` block. */
  async function* sseEvents(response, signal, onByte) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      onByte();
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, "");
        let event = "message";
        const data = [];
        for (const line of block.split(/\r?\n/)) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (data.length) yield { event, data: JSON.parse(data.join("\n")) };
      }
      if (signal.aborted) break;
    }
  }

  class ChatError extends Error {
    constructor(message, retryAfter) {
      super(message);
      this.retryAfter = retryAfter || 0;
    }
  }

  function errorFor(status, body, retryAfter) {
    const type = body && body.error ? body.error.type : "";
    if (status === 429) return new ChatError("Too many questions at once. You can try again shortly.", retryAfter || 5);
    if (status === 503 || type === "dependency_unavailable" || type === "index_unavailable")
      return new ChatError("Support is temporarily unavailable. Please try again in a moment.", retryAfter);
    if (status === 401 || status === 403) return new ChatError("This chat is not set up correctly (its key was refused).");
    if (status === 413) return new ChatError("That message is too long. Please shorten it.");
    const detail = body && body.error ? ` (${body.error.message})` : "";
    return new ChatError(`Sorry, something went wrong${detail}.`);
  }

  /* What the `done` event says about the answer; before the server sends `outcome`, an
   * answer the relevance gate declined (`abstained: "not_relevant"`) counts as declined. */
  function outcomeOf(data) {
    const outcome = data.outcome || (data.abstained === "not_relevant" ? "declined" : "answered");
    return { outcome, suggestions: data.suggestions || [], warnings: data.warnings || [],
      unsupported: data.unsupported || [] };
  }

  class TandemChat extends HTMLElement {
    connectedCallback() {
      if (this.shadowRoot) return;
      this.config = readConfig();
      this.storeKey = `tandem-widget:${this.config.apiBase}`;
      this.state = this.load();
      const root = this.attachShadow({ mode: "open" });
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
      const c = this.config.colors;
      for (const [name, prop] of [["accent", "--accent"], ["accentText", "--accent-text"], ["background", "--bg"], ["text", "--text"]])
        if (c[name]) this.style.setProperty(prop, c[name]);
      this.build(root);
      this.renderAll();
      if (this.state.open) this.toggle(true, false);
    }

    load() {
      try {
        const saved = JSON.parse(sessionStorage.getItem(this.storeKey) || "null");
        if (saved && Array.isArray(saved.messages))
          // an answer cut off by the reload itself is dropped; its question can be asked again
          return { open: !!saved.open, messages: saved.messages.filter((m) => !m.streaming && (m.content || m.error)) };
      } catch (_) { /* a broken entry starts a fresh conversation */ }
      return { open: false, messages: [] };
    }

    save() {
      try {
        sessionStorage.setItem(this.storeKey, JSON.stringify(this.state));
      } catch (_) { /* storage full or blocked: the conversation still works, unsaved */ }
    }

    build(root) {
      this.launcher = el("button", { type: "button", class: "launcher", "aria-expanded": "false",
        "aria-controls": "tandem-panel", text: this.config.title, on: { click: () => this.toggle(true) } });
      this.release = el("p", { class: "release" });
      this.log = el("div", { class: "log", role: "log", "aria-live": "polite", "aria-label": "Conversation" });
      this.status = el("div", { class: "status", role: "alert", hidden: true });
      this.input = el("textarea", { id: "tandem-input", rows: "1", maxlength: "4000",
        placeholder: "Type your question…", "aria-label": "Your question" });
      this.send = el("button", { type: "submit", text: "Send" });
      this.input.addEventListener("keydown", (e) => {
        if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); this.form.requestSubmit(); }
      });
      this.form = el("form", { on: { submit: (e) => { e.preventDefault(); this.ask(); } } },
        el("label", { for: "tandem-input", class: "sr", text: "Your question" }), this.input, this.send);
      this.panel = el("section", { id: "tandem-panel", class: "panel", role: "dialog",
        "aria-label": this.config.title, hidden: true },
        el("header", {}, el("div", { class: "titles" }, el("h2", { text: this.config.title }), this.release),
          el("button", { type: "button", class: "close", "aria-label": "Close chat", text: "×",
            on: { click: () => this.toggle(false) } })),
        this.log, this.status, this.form);
      this.panel.addEventListener("keydown", (e) => { if (e.key === "Escape") this.toggle(false); });
      root.append(this.launcher, this.panel);
    }

    toggle(open, focus = true) {
      this.panel.hidden = !open;
      this.launcher.hidden = open;
      this.launcher.setAttribute("aria-expanded", String(open));
      this.state.open = open;
      this.save();
      if (focus) (open ? this.input : this.launcher).focus();
      if (open) this.log.scrollTop = this.log.scrollHeight;
    }

    renderAll() {
      this.log.replaceChildren(el("div", { class: "msg assistant", text: this.config.greeting }));
      for (const message of this.state.messages) this.log.append(this.renderMessage(message));
      const last = [...this.state.messages].reverse().find((m) => m.index || m.adapter);
      this.showRelease(last);
      const failed = this.state.messages[this.state.messages.length - 1];
      if (failed && failed.error) this.showError(failed.error, 0);
    }

    showRelease(message) {
      if (!message) return;
      const parts = [];
      if (message.release) parts.push(`Release ${message.release}`);
      if (message.index) parts.push(`Docs release ${message.index.release}`);
      if (message.adapter) parts.push(message.adapter);
      this.release.textContent = parts.join(" · ");
    }

    renderMessage(message) {
      if (message.role === "user") return el("div", { class: "msg user", text: message.content });
      const node = el("article", { class: "msg assistant", "aria-label": "Answer",
        "aria-busy": message.streaming ? "true" : "false", "data-chunks": String(message.chunks || 0) });
      this.fillAnswer(node, message);
      return node;
    }

    fillAnswer(node, message) {
      const body = el("div", { class: "body" });
      if (!message.content && message.streaming) body.append(el("p", { class: "thinking", text: "Thinking" }));
      else this.renderHouseFormat(body, message);
      node.replaceChildren(body);
      node.setAttribute("aria-busy", message.streaming ? "true" : "false");
      node.dataset.chunks = String(message.chunks || 0);
      if (message.sources && message.sources.length && !message.streaming) node.append(this.renderSources(message));
      if (message.error)
        node.append(el("p", { class: "error-text", text: message.content ? "This answer was interrupted." : "Not answered yet." }));
      if (message.index || message.adapter) {
        const where = [message.index ? `Answered from docs release ${message.index.release}` : "Answered without docs",
          message.adapter ? `by ${message.adapter}` : ""].join(" ").trim();
        node.append(el("p", { class: "meta", text: where }));
      }
      if (message.id && !message.streaming && !message.error) {
        node.append(this.renderRating(message));
        if (HANDOFF_OUTCOMES.has(message.outcome) || message.rating === "down" || message.handoff)
          node.append(this.renderHandoff(message));
      }
    }

    /* The house format: paragraphs, `Steps:` + numbered list as <ol>, [n] as citation buttons. */
    renderHouseFormat(body, message) {
      let list = null;
      for (const raw of message.content.split("\n")) {
        const line = raw.trim();
        if (!line) { list = null; continue; }
        const step = STEP.exec(line);
        if (step) {
          if (!list) { list = el("ol", { start: step[1] }); body.append(list); }
          list.append(this.withCitations(el("li"), step[2], message));
          continue;
        }
        list = null;
        body.append(this.withCitations(el("p"), line, message));
      }
      if (message.outcome === "suggested" && message.suggestions && message.suggestions.length)
        body.append(this.renderSuggestions(message.suggestions, message));
    }

    /* The closest pages, each a link to its block among the sources (opened and focused). */
    renderSuggestions(pages, message) {
      const list = el("ul", { class: "suggestions", "aria-label": "Pages that may help" });
      for (const page of pages.slice(0, 3)) {
        const label = `${page.file} › ${page.heading || "(top)"} (${page.release})`;
        const source = (message.sources || []).find((s) => s.file === page.file && s.heading === page.heading);
        list.append(el("li", { class: "suggestion" }, source
          ? el("button", { type: "button", class: "suggestion-link", text: label,
              "aria-label": `Open the page ${label}`, on: { click: () => this.openSource(message, source.n) } })
          : el("span", { text: label })));
      }
      return list;
    }

    withCitations(node, text, message) {
      let at = 0;
      for (const match of text.matchAll(CITE)) {
        node.append(document.createTextNode(text.slice(at, match.index)));
        const source = (message.sources || []).find((s) => s.n === Number(match[1]));
        node.append(source ? this.citeButton(source, message) : document.createTextNode(match[0]));
        at = match.index + match[0].length;
      }
      node.append(document.createTextNode(text.slice(at)));
      return node;
    }

    citeButton(source, message) {
      return el("button", { type: "button", class: "cite", text: `[${source.n}]`,
        "aria-label": `Source ${source.n}: ${source.file}, ${source.heading}, release ${source.release}`,
        on: { click: () => this.openSource(message, source.n) } });
    }

    openSource(message, n) {
      const item = this.log.querySelector(`[data-source="${CSS_ID(message.id)}-${n}"]`);
      if (!item) return;
      for (let fold = item; fold; fold = fold.parentElement && fold.parentElement.closest("details")) fold.open = true;
      const summary = item.querySelector("summary");
      summary.focus();
      summary.scrollIntoView({ block: "nearest", behavior: matchMedia("(prefers-reduced-motion: reduce)").matches ? "auto" : "smooth" });
    }

    /* Cited sources first and open to click; the other blocks searched fold away. */
    renderSources(message) {
      const cited = new Set([...message.content.matchAll(CITE)].map((m) => Number(m[1])));
      const list = el("ul", { class: "sources", "aria-label": "Sources" });
      const others = el("ul", { class: "sources" });
      for (const s of message.sources) {
        const details = el("details", { "data-source": `${CSS_ID(message.id)}-${s.n}` },
          el("summary", { class: "source", text: `[${s.n}] ${s.file} › ${s.heading || "(top)"} · release ${s.release}` }),
          el("p", { class: "snippet", text: s.snippet || "" }));
        (cited.has(s.n) ? list : others).append(el("li", {}, details));
      }
      if (others.children.length) {
        const label = list.children.length ? "Other sources searched" : "Sources searched";
        list.append(el("li", {}, el("details", {}, el("summary", { text: `${label} (${others.children.length})` }), others)));
      }
      return list;
    }

    renderRating(message) {
      const row = el("div", { class: "rate", role: "group", "aria-label": "Rate this answer" },
        el("span", { text: "Helpful?" }));
      const thanks = el("span", { class: "thanks", role: "status" });
      const comment = el("div", { class: "comment", hidden: true });
      const buttons = [["up", "👍", "Helpful"], ["down", "👎", "Not helpful"]].map(([rating, icon, label]) =>
        el("button", { type: "button", "data-rating": rating, "aria-label": label, text: icon,
          "aria-pressed": String(message.rating === rating),
          on: { click: () => this.rate(message, rating, "", row, thanks, comment) } }));
      const box = el("textarea", { rows: "2", maxlength: "2000", "aria-label": "What was wrong with this answer? (optional)",
        placeholder: "What was wrong? (optional)" });
      comment.append(box, el("button", { type: "button", text: "Send feedback",
        on: { click: () => this.rate(message, "down", box.value, row, thanks, comment) } }));
      row.append(...buttons, thanks, comment);
      return row;
    }

    async rate(message, rating, comment, row, thanks, commentBox) {
      thanks.textContent = "Sending…";
      try {
        const response = await fetch(`${this.config.apiBase}/v1/feedback`, {
          method: "POST", headers: this.headers(), body: JSON.stringify({ id: message.id, rating, comment }) });
        if (!response.ok) throw errorFor(response.status, await response.json().catch(() => null));
        message.rating = rating;
        this.save();
        for (const b of row.querySelectorAll("button[data-rating]")) b.setAttribute("aria-pressed", String(b.dataset.rating === rating));
        thanks.textContent = comment ? "Thanks, your comment was sent." : "Thanks for your feedback.";
        commentBox.hidden = rating !== "down" || !!comment;
        const node = row.closest("article");
        if (rating === "down" && node && !node.querySelector(".handoff")) node.append(this.renderHandoff(message));
        if (!commentBox.hidden) commentBox.querySelector("textarea").focus();
      } catch (error) {
        thanks.textContent = error instanceof ChatError ? error.message : "Feedback could not be sent; check your connection.";
      }
    }

    /* "Talk to a person": contact + optional note -> POST /v1/handoff -> a confirmation. */
    renderHandoff(message) {
      const id = CSS_ID(message.id);
      const box = el("div", { class: "handoff", role: "group", "aria-label": "Talk to a person" });
      const done = el("p", { class: "handoff-done", role: "status" });
      if (message.handoff) {
        done.textContent = `Sent. Someone from our team will contact you at ${message.handoff.contact}.`;
        box.append(done);
        return box;
      }
      const open = el("button", { type: "button", class: "open", text: "Talk to a person",
        "aria-expanded": "false", "aria-controls": `tandem-handoff-${id}` });
      const contact = el("input", { id: `tandem-contact-${id}`, name: "contact", type: this.config.contactType,
        required: true, maxlength: "320", autocomplete: this.config.contactType === "email" ? "email" : "on" });
      const note = el("textarea", { id: `tandem-note-${id}`, name: "note", rows: "2", maxlength: "2000" });
      const problem = el("div", { class: "problem", role: "alert" });
      const send = el("button", { type: "submit", text: "Send to our team" });
      const form = el("form", { id: `tandem-handoff-${id}`, class: "handoff-form", hidden: true,
        "aria-label": "Talk to a person" },
        el("p", { text: "Our support team gets this conversation and will get back to you." }),
        el("label", { for: contact.id, text: this.config.contactLabel }), contact,
        el("label", { for: note.id, text: "Anything to add? (optional)" }), note,
        el("div", { class: "actions" }, send,
          el("button", { type: "button", class: "cancel", text: "Cancel", on: { click: () => show(false) } })),
        problem);
      const show = (visible) => {
        form.hidden = !visible;
        open.hidden = visible;
        open.setAttribute("aria-expanded", String(visible));
        (visible ? contact : open).focus();
      };
      open.addEventListener("click", () => show(true));
      const submit = async () => {
        send.disabled = true;
        problem.replaceChildren(el("span", { text: "Sending…" }));
        try {
          await this.handOff(message, contact.value.trim(), note.value.trim());
          form.remove();
          open.remove();
          done.textContent = `Sent. Someone from our team will contact you at ${message.handoff.contact}.`;
          done.tabIndex = -1;
          done.focus();
        } catch (error) {
          const text = error instanceof ChatError ? error.message : "Your request could not be sent; check your connection.";
          this.showProblem(problem, text, error.retryAfter || 0, submit);
        } finally {
          send.disabled = false;
        }
      };
      form.addEventListener("submit", (e) => { e.preventDefault(); submit(); });
      box.append(open, form, done);
      return box;
    }

    async handOff(message, contact, note) {
      const upto = this.state.messages.indexOf(message);
      const turns = this.state.messages.slice(0, upto + 1).filter((m) => m.content && !m.error)
        .map((m) => ({ role: m.role, content: m.content })).slice(-2 * MAX_TURNS);
      while (turns.length > 1 && turns.reduce((n, m) => n + m.content.length, 0) > HANDOFF_CHARS) turns.shift();
      const response = await fetch(`${this.config.apiBase}/v1/handoff`, { method: "POST", headers: this.headers(),
        body: JSON.stringify({ id: message.id, contact, note, messages: turns }) });
      if (!response.ok)
        throw errorFor(response.status, await response.json().catch(() => null), Number(response.headers.get("Retry-After")) || 0);
      const body = await response.json();
      message.handoff = { id: body.handoff, contact };
      this.save();
    }

    /* A failed call in a part of the log: its message and a Retry button (after Retry-After). */
    showProblem(box, text, retryAfter, again) {
      const button = el("button", { type: "button", text: "Retry", on: { click: () => again() } });
      box.replaceChildren(el("span", { class: "error-text", text }), button);
      let left = retryAfter;
      const tick = () => {
        button.disabled = left > 0;
        button.textContent = left > 0 ? `Retry in ${left} s` : "Retry";
        if (left-- <= 0) clearInterval(timer);
      };
      const timer = setInterval(tick, 1000);
      tick();
    }

    headers() {
      const h = { "Content-Type": "application/json" };
      if (this.config.key) h.Authorization = `Bearer ${this.config.key}`;
      return h;
    }

    ask() {
      const text = this.input.value.trim();
      if (!text || this.busy) return;
      this.input.value = "";
      const message = { role: "user", content: text };
      this.state.messages.push(message);
      this.log.append(this.renderMessage(message));
      this.answer();
    }

    retry() {
      const last = this.state.messages[this.state.messages.length - 1];
      if (last && last.role === "assistant") { this.state.messages.pop(); this.log.lastElementChild.remove(); }
      this.input.focus(); // the Retry button is about to go away
      this.answer();
    }

    async answer() {
      this.busy = true;
      this.send.disabled = true;
      this.hideError();
      const history = this.state.messages.filter((m) => m.content && !m.error)
        .map((m) => ({ role: m.role, content: m.content })).slice(-MAX_TURNS);
      const message = { role: "assistant", content: "", streaming: true, chunks: 0 };
      this.state.messages.push(message);
      const node = this.renderMessage(message);
      this.log.append(node);
      this.log.scrollTop = this.log.scrollHeight;
      try {
        await this.stream(history, message, node);
        if (!message.done) throw new ChatError("The connection dropped before the answer finished.");
      } catch (error) {
        message.error = error instanceof ChatError ? error.message : "The connection was lost. Check your network and try again.";
        this.showError(message.error, error.retryAfter || 0);
      } finally {
        message.streaming = false;
        this.fillAnswer(node, message);
        this.showRelease(message);
        this.busy = false;
        this.send.disabled = false;
        this.save();
        this.log.scrollTop = this.log.scrollHeight;
      }
    }

    async stream(history, message, node) {
      const abort = new AbortController();
      let stall = setTimeout(() => abort.abort(), STALL_MS);
      const alive = () => { clearTimeout(stall); stall = setTimeout(() => abort.abort(), STALL_MS); };
      try {
        const response = await fetch(`${this.config.apiBase}/v1/chat`, { method: "POST", headers: this.headers(),
          body: JSON.stringify({ messages: history, stream: true }), signal: abort.signal });
        if (!response.ok)
          throw errorFor(response.status, await response.json().catch(() => null), Number(response.headers.get("Retry-After")) || 0);
        for await (const { event, data } of sseEvents(response, abort.signal, alive)) {
          if (event === "sources") Object.assign(message, { id: data.id, sources: data.sources, adapter: data.adapter, index: data.index, release: data.release });
          else if (event === "delta") { message.content += data.text; message.chunks += 1; this.fillAnswer(node, message); }
          else if (event === "done") { message.done = true; Object.assign(message, outcomeOf(data)); }
          else if (event === "error") throw errorFor(0, data, 5);
        }
      } catch (error) {
        if (abort.signal.aborted && !(error instanceof ChatError)) throw new ChatError("The answer stalled and was stopped.");
        throw error;
      } finally {
        clearTimeout(stall);
      }
    }

    showError(text, retryAfter) {
      const button = el("button", { type: "button", text: "Retry", on: { click: () => this.retry() } });
      this.status.replaceChildren(el("span", { class: "error-text", text }), button);
      this.status.hidden = false;
      clearInterval(this.countdown);
      let left = retryAfter;
      const tick = () => {
        button.disabled = left > 0;
        button.textContent = left > 0 ? `Retry in ${left} s` : "Retry";
        if (left-- <= 0) clearInterval(this.countdown);
      };
      tick();
      if (retryAfter > 0) this.countdown = setInterval(tick, 1000);
    }

    hideError() {
      clearInterval(this.countdown);
      this.status.hidden = true;
      this.status.replaceChildren();
    }
  }

  const CSS_ID = (id) => String(id || "").replace(/[^A-Za-z0-9_-]/g, "");

  customElements.define("tandem-chat", TandemChat);
  const mount = () => { if (!document.querySelector("tandem-chat")) document.body.append(document.createElement("tandem-chat")); };
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();

// The dashboard screen: the relay's state, the list key's alarm, the counts,
// the subscribers' keys that expire soon or cannot be used, and the last
// activity.

import { api } from "../api";
import { h, mount } from "../dom";
import { follow, live } from "../events";
import { content, render, state } from "../state";
import type { KeyNote } from "../bindings/KeyNote";
import { logTable } from "./activity";

/** A section naming subscribers' keys, or nothing when there are none. */
function keySection(id: string, notes: KeyNote[], one: string, many: string): HTMLElement | null {
  if (notes.length === 0) return null;
  return h(
    "section",
    { id, class: "keys" },
    h("h3", {}, notes.length === 1 ? one : many.replace("N", String(notes.length))),
    h(
      "ul",
      {},
      ...notes.map((n) => h("li", { title: n.fingerprint }, h("strong", {}, n.address), ` — ${n.detail}`)),
    ),
  );
}

export async function dashboard(): Promise<void> {
  const d = await api.dashboard();
  const status = await api.status();
  state.status = status;
  // The relay may have spoken before this page listened.
  if (!live.ok && !live.lastError && status.last) follow(status.last);
  const tile = (id: string, n: number, label: string) =>
    h("div", { class: "tile", id }, h("strong", {}, String(n)), h("span", {}, label));
  mount(
    content,
    h("h2", {}, "Dashboard"),
    h(
      "div",
      { class: `connection ${live.ok ? "ok" : "bad"}`, id: "connection" },
      h("strong", {}, status.running ? "Relay running" : "Relay stopped"),
      " — IMAP and SMTP: ",
      live.connection,
    ),
    live.lastError ? h("p", { class: "error" }, live.lastError) : null,
    d.list_key_alarm ? h("p", { class: "error", id: "list-key-alarm" }, d.list_key_alarm) : null,
    !status.running
      ? h("button", { id: "relay-start", onclick: async () => { await api.relayStart(); void render(); } }, "Start the relay")
      : null,
    live.progress
      ? h(
          "div",
          { class: "progress", id: "progress" },
          h("progress", { max: live.progress.total, value: live.progress.done }),
          ` ${live.progress.done} of ${live.progress.total} copies sent`,
        )
      : null,
    h(
      "div",
      { class: "tiles" },
      tile("count-subscribers", d.subscribers, "subscribers"),
      tile("count-held", d.held, "held for you"),
      tile("count-requests", d.requests, "requests for you"),
      tile("count-queued", d.queued, "copies queued"),
      tile("count-sent", d.sent, "copies sent"),
    ),
    keySection("keys-expiring", d.expiring, "1 subscriber key expires soon", "N subscriber keys expire soon"),
    keySection("keys-not-receiving", d.not_receiving, "1 subscriber receives no posts", "N subscribers receive no posts"),
    h("h3", {}, "Last activity"),
    logTable(d.recent),
  );
}

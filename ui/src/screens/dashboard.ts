// The dashboard screen: the relay's state, the counts, and the last activity.

import { api } from "../api";
import { h, mount } from "../dom";
import { follow, live } from "../events";
import { content, render, state } from "../state";
import { logTable } from "./activity";

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
    h("h3", {}, "Last activity"),
    logTable(d.recent),
  );
}

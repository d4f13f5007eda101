// Conclave's window: the first-run wizard, then the screens of a running
// list. Every action goes through `api`; every change the engine makes
// arrives as an event. This module ties the others together: startup,
// navigation, which screen renders, and the engine's events.

import { api, onEvent } from "./api";
import type { UiEvent } from "./bindings/UiEvent";
import { h, mount } from "./dom";
import { follow } from "./events";
import { showError } from "./feedback";
import { activity } from "./screens/activity";
import { cardScreen } from "./screens/card";
import { certificates } from "./screens/certificates";
import { dashboard } from "./screens/dashboard";
import { listKey } from "./screens/key";
import { moderation } from "./screens/moderation";
import { requests } from "./screens/requests";
import { settings } from "./screens/settings";
import { subscribers } from "./screens/subscribers";
import { unlockScreen } from "./screens/unlock";
import { app, content, render, setRenderer, state } from "./state";
import { wizard } from "./wizard";

type Screen = "dashboard" | "moderation" | "requests" | "subscribers" | "key" | "card" | "certificates" | "settings" | "activity";
let screen: Screen = "dashboard";

// ---------------------------------------------------------------- start

async function start(): Promise<void> {
  const status = await api.status();
  state.status = status;
  if (!status.initialised) return wizard(shell);
  if (!status.unlocked) return unlockScreen(shell);
  return shell();
}

onEvent((e: UiEvent) => {
  follow(e);
  // The dashboard follows events live, and the requests screen follows the
  // requests; other screens keep what the owner is reading or typing.
  if (!state.status?.unlocked) return;
  if (screen === "dashboard") scheduleRender();
  // A notice may be a subscriber's copies bouncing: their delivery changed.
  if (screen === "subscribers" && e.type === "notice") scheduleRender();
  if (screen === "requests" && (e.type === "requests" || (e.type === "post" && e.request)) && !typing()) {
    scheduleRender();
  }
});

/** Whether the owner has started a reason for refusing a request. */
function typing(): boolean {
  return [...document.querySelectorAll<HTMLInputElement>(".request-reason")].some((i) => i.value !== "");
}

/** Re-renders at most four times a second: a post to 1000 subscribers sends
 * 1000 progress events. */
let renderPending = false;
function scheduleRender(): void {
  if (renderPending) return;
  renderPending = true;
  setTimeout(() => {
    renderPending = false;
    if (screen === "dashboard" || screen === "requests") void render();
  }, 250);
}

// ---------------------------------------------------------------- shell

const NAV: [Screen, string][] = [
  ["dashboard", "Dashboard"],
  ["moderation", "Moderation"],
  ["requests", "Requests"],
  ["subscribers", "Subscribers"],
  ["key", "List key"],
  ["card", "Card"],
  ["certificates", "Certificates"],
  ["settings", "Settings"],
  ["activity", "Activity"],
];

function shell(): void {
  const nav = h(
    "nav",
    {},
    h("div", { class: "brand" }, h("img", { src: "/icon.png", alt: "" }), h("span", {}, state.status?.name ?? "Conclave")),
    ...NAV.map(([id, label]) =>
      h(
        "button",
        {
          id: `nav-${id}`,
          class: id === screen ? "active" : "",
          onclick: () => {
            screen = id;
            shell();
          },
        },
        label,
      ),
    ),
  );
  mount(app, h("div", { class: "shell" }, nav, content));
  void render();
}

/** Draws the current screen; `render` in state.ts queues the calls. */
async function renderNow(): Promise<void> {
  try {
    switch (screen) {
      case "dashboard":
        return await dashboard();
      case "moderation":
        return await moderation();
      case "requests":
        return await requests();
      case "subscribers":
        return await subscribers();
      case "key":
        return await listKey();
      case "card":
        return await cardScreen();
      case "certificates":
        return await certificates();
      case "settings":
        return await settings();
      case "activity":
        return await activity();
    }
  } catch (e) {
    showError(e, content);
  }
}

setRenderer(renderNow);

void start().catch((e) => showError(e));

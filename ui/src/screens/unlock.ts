// The unlock screen: the list key's passphrase, asked at start.

import { api } from "../api";
import { field, h, mount, value } from "../dom";
import { showError } from "../feedback";
import { app, state } from "../state";

/** Asks for the passphrase; `done` runs once the key is unlocked. */
export function unlockScreen(done: () => void): void {
  const box = h(
    "main",
    { class: "wizard", id: "unlock" },
    h("h1", {}, state.status?.name || "Conclave"),
    h("p", {}, `The key of ${state.status?.address} is locked.`),
    field("unlock-passphrase", "Passphrase", { type: "password" }),
    h(
      "div",
      { class: "actions" },
      h(
        "button",
        {
          id: "unlock-button",
          onclick: async () => {
            try {
              state.status = await api.unlock(value("unlock-passphrase"));
              done();
            } catch (e) {
              showError(e, box);
            }
          },
        },
        "Unlock",
      ),
    ),
  );
  mount(app, box);
}

// The PIN dialog: an OpenPGP card asks for its PIN.

import { api } from "../api";
import { h, mount } from "../dom";
import { overlay } from "../state";

export function pinDialog(ident: string, kind: string, triesLeft: number): void {
  const answer = async (pin: string | null) => {
    mount(overlay);
    await api.pinAnswer(pin);
  };
  const input = h("input", { id: "pin-input", type: "password", autocomplete: "off" });
  input.addEventListener("keydown", (e: Event) => {
    if ((e as KeyboardEvent).key === "Enter") void answer((input as HTMLInputElement).value);
  });
  mount(
    overlay,
    h(
      "div",
      { class: "backdrop" },
      h(
        "div",
        { class: "dialog", id: "pin-dialog", role: "dialog" },
        h("h2", {}, `The OpenPGP card ${ident} needs its ${kind} PIN`),
        h(
          "p",
          {},
          `${triesLeft} ${triesLeft === 1 ? "try is" : "tries are"} left before the card blocks the PIN. Conclave keeps the PIN in memory only, until it closes.`,
        ),
        h("label", { class: "field" }, h("span", {}, "PIN"), input),
        h(
          "div",
          { class: "actions" },
          h("button", { id: "pin-cancel", class: "secondary", onclick: () => void answer(null) }, "Cancel"),
          h("button", { id: "pin-ok", onclick: () => void answer((input as HTMLInputElement).value) }, "Unlock"),
        ),
      ),
    ),
  );
  (input as HTMLInputElement).focus();
}

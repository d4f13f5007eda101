// The card screen: the OpenPGP cards plugged in, and the card choice other screens offer.

import { api } from "../api";
import { h, mount } from "../dom";
import { spaced } from "../format";
import { content } from "../state";

/** Fills the select `id` with the cards the readers see. */
export async function fillCards(id: string, noneId: string | null): Promise<void> {
  const select = document.getElementById(id) as HTMLSelectElement | null;
  if (!select) return;
  let cards: Awaited<ReturnType<typeof api.cards>> = [];
  try {
    cards = await api.cards();
  } catch {
    cards = [];
  }
  mount(select, ...cards.map((c) => h("option", { value: c.ident }, `${c.manufacturer} ${c.ident}`)));
  if (noneId) {
    const none = document.getElementById(noneId);
    if (none) none.hidden = cards.length > 0;
  }
}

export async function cardScreen(): Promise<void> {
  const cards = await api.cards();
  const slot = (f: string | null) => (f ? h("code", {}, spaced(f)) : h("em", {}, "empty"));
  mount(
    content,
    h("h2", {}, "OpenPGP card"),
    cards.length === 0
      ? h("p", { id: "cards-empty" }, "No OpenPGP card is plugged in.")
      : cards.map((c) =>
          h(
            "div",
            { class: "card", id: `card-${c.ident.replace(":", "-")}` },
            h("h3", {}, `${c.manufacturer} ${c.ident}`, c.holds_list_key ? h("span", { class: "badge" }, " holds the list key") : null),
            h(
              "dl",
              { class: "facts" },
              h("dt", {}, "Serial"),
              h("dd", {}, c.serial),
              h("dt", {}, "Signature slot"),
              h("dd", {}, slot(c.slots[0] ?? null)),
              h("dt", {}, "Decryption slot"),
              h("dd", {}, slot(c.slots[1] ?? null)),
              h("dt", {}, "Authentication slot"),
              h("dd", {}, slot(c.slots[2] ?? null)),
              h("dt", {}, "PIN tries left"),
              h(
                "dd",
                { class: "pin-tries" },
                `user PIN ${c.user_pin_tries}, reset code ${c.reset_code_tries}, admin PIN ${c.admin_pin_tries}`,
              ),
              h("dt", {}, "Signatures made"),
              h("dd", { class: "sig-count" }, String(c.signature_count)),
            ),
          ),
        ),
  );
}

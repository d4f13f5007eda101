// The Invite dialog: the invitation a newcomer follows, its QR code to
// check the list key out of band, and its vCard (the list key) to save.

import { api } from "../api";
import type { Invitation } from "../bindings/Invitation";
import { h, mount } from "../dom";
import { notify, showError } from "../feedback";
import { spaced } from "../format";
import { overlay } from "../state";

/** Copies `text` to the clipboard, falling back to a selected text area. */
async function copy(text: string, from: HTMLTextAreaElement): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    from.select();
    document.execCommand("copy");
  }
}

export async function inviteDialog(): Promise<void> {
  const inv: Invitation = await api.invitation();
  const close = () => mount(overlay);
  const text = h("textarea", { id: "invite-text", rows: 9, readonly: true }) as HTMLTextAreaElement;
  text.value = inv.text;
  const path = h("input", { id: "invite-vcard-path", placeholder: "/home/you/list.vcf", size: 36 }) as HTMLInputElement;
  const save = h(
    "div",
    { class: "invite-save", hidden: true },
    path,
    h(
      "button",
      {
        id: "invite-vcard-write",
        onclick: async () => {
          try {
            notify(`vCard written to ${await api.invitationSaveVcard(path.value)}.`);
          } catch (e) {
            showError(e, save);
          }
        },
      },
      "Save",
    ),
  );
  const dialog = h(
    "div",
    { class: "dialog invite", id: "invite-dialog", role: "dialog" },
    h("h2", {}, `Invite someone to ${inv.name}`),
    h(
      "p",
      {},
      "Send this text to the newcomer, or show them the QR code: their app reads the list key's fingerprint from it, so they can check the key they have is the list's. The vCard carries the list key itself.",
    ),
    h(
      "div",
      { class: "invite-body" },
      h("img", {
        id: "invite-qr",
        alt: `QR code: ${inv.qr_content}`,
        src: `data:image/svg+xml;base64,${btoa(inv.qr_svg)}`,
      }),
      h(
        "dl",
        {},
        h("dt", {}, "List address"),
        h("dd", { id: "invite-address" }, inv.address),
        h("dt", {}, "Requests"),
        h("dd", {}, inv.request_address),
        h("dt", {}, "Owner"),
        h("dd", {}, inv.owner_address),
        h("dt", {}, "Fingerprint"),
        h("dd", { id: "invite-fingerprint" }, h("code", {}, spaced(inv.fingerprint))),
      ),
    ),
    text,
    save,
    h(
      "div",
      { class: "actions" },
      h("button", { id: "invite-close", class: "secondary", onclick: close }, "Close"),
      h(
        "button",
        { id: "invite-save-vcard", class: "secondary", onclick: () => (save.hidden = false) },
        "Save vCard…",
      ),
      h(
        "button",
        {
          id: "invite-copy",
          onclick: async () => {
            await copy(inv.text, text);
            notify("The invitation is on the clipboard.");
          },
        },
        "Copy text",
      ),
    ),
  );
  mount(overlay, h("div", { class: "backdrop" }, dialog));
}

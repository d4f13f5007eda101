// The list key screen: its facts, public key, expiry, backup and move to a card.

import { api } from "../api";
import { field, h, mount, value } from "../dom";
import { notify, showError } from "../feedback";
import { spaced } from "../format";
import { content, render } from "../state";
import { fillCards } from "./card";

export async function listKey(): Promise<void> {
  const k = await api.listKey();
  mount(
    content,
    h("h2", {}, "List key"),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Fingerprint"),
      h("dd", { id: "key-fingerprint" }, h("code", {}, spaced(k.fingerprint))),
      h("dt", {}, "Expires"),
      h("dd", { id: "key-expires" }, k.expires ?? "never"),
      h("dt", {}, "Secret key"),
      h("dd", {}, k.holder === "file" ? "in a passphrase-protected file in the list's folder" : `on the OpenPGP card ${k.holder}`),
    ),
    h("h3", {}, "Public key for subscribers"),
    h("p", { class: "hint" }, "Subscribers encrypt their posts to this key and check the list's signatures with it."),
    h("textarea", { id: "key-armored", rows: 10, readonly: true }, k.armored),
    h(
      "div",
      { class: "actions" },
      h(
        "button",
        {
          id: "key-copy",
          onclick: async () => {
            await navigator.clipboard.writeText(k.armored);
            notify("The public key is on the clipboard.");
          },
        },
        "Copy the public key",
      ),
    ),
    h("h3", {}, "Publish"),
    h(
      "p",
      { class: "hint" },
      "Upload the public key to the keyserver (setting keys.keyserver) so anyone finds it by the list address. The keyserver mails the list address a link; Conclave opens it by itself when the mail arrives.",
    ),
    h(
      "div",
      { class: "actions" },
      h(
        "button",
        {
          id: "key-publish",
          onclick: async () => {
            try {
              notify(await api.keyPublish());
            } catch (e) {
              showError(e, content);
            }
          },
        },
        "Publish",
      ),
    ),
    h("h3", {}, "Expiry"),
    h(
      "p",
      { class: "hint" },
      "Move the expiry forward before it comes; then send subscribers the public key again so their clients know.",
    ),
    h(
      "div",
      { class: "actions" },
      h("select", { id: "key-years" }, ...[1, 2, 3, 5].map((y) => h("option", { value: y, selected: y === 2 }, `${y} year${y > 1 ? "s" : ""} from now`))),
      h(
        "button",
        {
          id: "key-extend",
          onclick: async () => {
            try {
              const k2 = await api.keyExtend(Number(value("key-years")));
              notify(`The list key now expires ${k2.expires ?? "never"}.`);
              void render();
            } catch (e) {
              showError(e, content);
            }
          },
        },
        "Extend",
      ),
    ),
    k.holder === "file"
      ? [
          h("h3", {}, "Encrypted backup"),
          h("p", { class: "hint" }, "A copy of the secret key, still protected by the list passphrase. Keep it off this computer."),
          h(
            "div",
            { class: "actions" },
            h("input", { id: "key-backup-path", placeholder: "/media/usb/list-key-backup.asc", size: 40 }),
            h(
              "button",
              {
                id: "key-backup",
                onclick: async () => {
                  try {
                    notify(`Backup written to ${await api.keyBackup(value("key-backup-path"))}.`);
                  } catch (e) {
                    showError(e, content);
                  }
                },
              },
              "Write the backup",
            ),
          ),
          h("h3", {}, "Move the key to an OpenPGP card"),
          h("p", { class: "hint" }, "The card then decrypts and signs for the list; it asks for its PIN. The admin PIN is asked for once, to load the key."),
          h("select", { id: "key-card" }),
          field("key-card-passphrase", "List passphrase", { type: "password" }),
          h(
            "label",
            { class: "choice" },
            h("input", { type: "checkbox", id: "key-card-keep" }),
            " Keep the key file too (otherwise it is deleted; make a backup first)",
          ),
          h(
            "div",
            { class: "actions" },
            h(
              "button",
              {
                id: "key-to-card",
                onclick: async () => {
                  try {
                    const keep = (document.getElementById("key-card-keep") as HTMLInputElement).checked;
                    await api.keyToCard(value("key-card"), value("key-card-passphrase"), keep);
                    notify("The list key is on the card now.");
                    void render();
                  } catch (e) {
                    showError(e, content);
                  }
                },
              },
              "Move to the card",
            ),
          ),
        ]
      : null,
  );
  if (k.holder === "file") await fillCards("key-card", null);
}

// The subscribers screen: who is on the list with which key, how their copies
// fare (bounces), and adding, re-enabling or removing them.

import { api } from "../api";
import { field, h, mount, value } from "../dom";
import { showError } from "../feedback";
import { spaced } from "../format";
import { content, render } from "../state";
import { replaceKeyBox } from "../dialogs/replace-key";
import { inviteDialog } from "../dialogs/invite";

export async function subscribers(): Promise<void> {
  const subs = await api.subscribers();
  const form = h(
    "div",
    { class: "add" },
    h("h3", {}, "Add a subscriber"),
    field("sub-address", "Address", { type: "email" }),
    h("textarea", { id: "sub-key", rows: 4, placeholder: "-----BEGIN PGP PUBLIC KEY BLOCK-----" }),
    h(
      "input",
      {
        type: "file",
        id: "sub-key-file",
        accept: ".asc,.gpg,.pgp,.txt",
        onchange: async (e: Event) => {
          const f = (e.target as HTMLInputElement).files?.[0];
          if (f) (document.getElementById("sub-key") as HTMLTextAreaElement).value = await f.text();
        },
      },
    ),
    h(
      "button",
      {
        id: "sub-add",
        onclick: async () => {
          try {
            const address = value("sub-address").trim().toLowerCase();
            const key = value("sub-key");
            const current = subs.find((s) => s.address === address);
            if (current) {
              const fpr = await api.keyFingerprint(key);
              if (fpr !== current.fingerprint) {
                document.getElementById("sub-replace")?.remove();
                const box = replaceKeyBox("sub-replace-key", address, current.fingerprint, fpr, key, () => void render());
                box.id = "sub-replace";
                form.append(box);
                return;
              }
            }
            await api.subscriberAdd(address, key);
            void render();
          } catch (e) {
            showError(e, form);
          }
        },
      },
      "Add",
    ),
  );
  mount(
    content,
    h(
      "div",
      { class: "screen-head" },
      h("h2", {}, "Subscribers"),
      h(
        "button",
        {
          id: "sub-invite",
          class: "secondary",
          onclick: () => inviteDialog().catch((e) => showError(e, content)),
        },
        "Invite…",
      ),
    ),
    h(
      "table",
      { class: "subs" },
      h("tr", {}, h("th", {}, "Address"), h("th", {}, "Key"), h("th", {}, "Delivery"), h("th", {}, "")),
      ...subs.map((s) =>
        h(
          "tr",
          {},
          h("td", {}, s.address),
          h(
            "td",
            { class: "sub-key" },
            h("code", {}, spaced(s.fingerprint)),
            h("br"),
            h("small", {}, `${s.algorithm}; ${s.expires ? `expires ${s.expires}` : "does not expire"}; User IDs: ${s.addresses.join(", ") || "none valid"}`),
            s.warning ? h("div", { class: "warning" }, s.warning) : null,
          ),
          h(
            "td",
            { class: "sub-delivery" },
            h("span", { class: s.delivery === "ok" ? "" : "warning" }, s.delivery),
            s.last_failure ? h("div", {}, h("small", {}, `last failure: ${s.last_failure}`)) : null,
          ),
          h(
            "td",
            {},
            s.delivery_stopped
              ? h(
                  "button",
                  {
                    class: "small sub-enable",
                    onclick: async () => {
                      try {
                        await api.subscriberEnable(s.address);
                        void render();
                      } catch (e) {
                        showError(e, content);
                      }
                    },
                  },
                  "Re-enable",
                )
              : null,
            h(
              "button",
              {
                class: "danger small",
                onclick: async () => {
                  if (!confirm(`Remove ${s.address}?`)) return;
                  await api.subscriberRemove(s.address);
                  void render();
                },
              },
              "Remove",
            ),
          ),
        ),
      ),
    ),
    form,
  );
}

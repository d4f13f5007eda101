// The moderation screen: held posts, read and decided one by one.

import { api } from "../api";
import { field, h, mount, value } from "../dom";
import { notify, showError } from "../feedback";
import { spaced } from "../format";
import { content, render } from "../state";
import { replaceKeyBox } from "../dialogs/replace-key";

export async function moderation(): Promise<void> {
  const held = await api.heldList();
  const detail = h("div", { class: "detail", id: "held-detail" });
  mount(
    content,
    h("h2", {}, "Moderation"),
    held.length === 0 ? h("p", { id: "held-empty" }, "No post is waiting for you.") : null,
    h(
      "div",
      { class: "held-list" },
      ...held.map((p) =>
        h(
          "button",
          {
            class: "held-row",
            "data-id": p.id,
            onclick: async () => {
              try {
                const v = await api.heldShow(p.id);
                // Who each attached key would be for, and the key they have:
                // asked one address at a time, however long the list.
                const keyAddress = (k: (typeof v.keys)[number]) =>
                  k.addresses.includes(v.sender) ? v.sender : (k.addresses[0] ?? v.sender);
                const subscribed = await Promise.all(v.keys.map((k) => api.subscriberFingerprint(keyAddress(k))));
                const decide = (action: "approve" | "reject" | "discard") => async () => {
                  try {
                    await api.heldDecide(v.id, action, value("held-reason"));
                    void render();
                  } catch (e) {
                    showError(e, detail);
                  }
                };
                mount(
                  detail,
                  v.for_owner ? h("p", { class: "for-owner", id: "held-for-owner" }, "For the owner: read it, then discard it; it is never sent to subscribers.") : null,
                  h("h3", { id: "held-subject" }, v.subject || "(no subject)"),
                  h("p", {}, h("strong", {}, "From: "), v.sender),
                  h("p", {}, h("strong", {}, "Held because: "), v.reason),
                  h("p", { id: "held-signature" }, h("strong", {}, "Signature: "), v.signature),
                  h("pre", { id: "held-text" }, v.text),
                  ...v.keys.map((k, i) => {
                    const address = keyAddress(k);
                    const current = subscribed[i];
                    const about = h(
                      "span",
                      {},
                      "Attached key that signed this post ",
                      h("code", {}, spaced(k.fingerprint)),
                      ` for ${k.addresses.join(", ") || "no address"}`,
                    );
                    if (current && current === k.fingerprint) {
                      return h("div", { class: "attached-key" }, about, ` (${address} is subscribed with this key)`);
                    }
                    if (current) {
                      return h(
                        "div",
                        { class: "attached-key" },
                        about,
                        replaceKeyBox(`held-key-replace-${i}`, address, current, k.fingerprint, k.armored, () => {
                          void render();
                        }),
                      );
                    }
                    return h(
                      "div",
                      { class: "attached-key" },
                      about,
                      h(
                        "button",
                        {
                          id: `held-key-add-${i}`,
                          class: "small",
                          onclick: async () => {
                            try {
                              await api.subscriberAdd(address, k.armored);
                              notify(`${address} is now a subscriber.`);
                            } catch (e) {
                              showError(e, detail);
                            }
                          },
                        },
                        `Subscribe ${address} with this key`,
                      ),
                    );
                  }),
                  v.for_owner ? null : field("held-reason", "Reason (for a rejection)"),
                  h(
                    "div",
                    { class: "actions" },
                    v.for_owner ? null : h("button", { id: "held-approve", onclick: decide("approve") }, "Approve"),
                    v.for_owner ? null : h("button", { id: "held-reject", class: "secondary", onclick: decide("reject") }, "Reject"),
                    h("button", { id: "held-discard", class: "danger", onclick: decide("discard") }, "Discard"),
                  ),
                );
              } catch (e) {
                showError(e, detail);
              }
            },
          },
          h("strong", {}, `#${p.id} ${p.sender || "(unknown sender)"}`),
          h("span", {}, p.for_owner ? h("span", { class: "for-owner" }, "For the owner: ") : null, p.reason),
          h("small", {}, p.received),
        ),
      ),
    ),
    detail,
  );
}

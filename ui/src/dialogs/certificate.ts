// The certificate dialog: a server certificate nothing vouches for, or one that changed.

import { api } from "../api";
import type { Certificate } from "../bindings/Certificate";
import { h, mount } from "../dom";
import { showError } from "../feedback";
import { spaced } from "../format";
import { overlay, render, state } from "../state";

export function certificateDialog(c: Certificate): void {
  if (document.getElementById("cert-dialog") || document.getElementById("cert-alarm")) return;
  const rows = h(
    "dl",
    {},
    h("dt", {}, "Server"),
    h("dd", { id: "cert-endpoint" }, c.endpoint),
    h("dt", {}, "Subject"),
    h("dd", {}, c.subject),
    h("dt", {}, "Issuer"),
    h("dd", {}, c.issuer),
    h("dt", {}, "Valid"),
    h("dd", {}, `${c.not_before} to ${c.not_after}`),
    h("dt", {}, "Names"),
    h("dd", {}, c.names.join(", ")),
    h("dt", {}, "SHA-256"),
    h("dd", { id: "cert-sha256" }, h("code", {}, spaced(c.sha256))),
    c.pinned ? h("dt", {}, "You accepted") : null,
    c.pinned ? h("dd", { id: "cert-pinned" }, h("code", {}, spaced(c.pinned))) : null,
  );
  const close = () => mount(overlay);
  const accept = async () => {
    try {
      state.status = await api.certAccept(c.endpoint, c.sha256);
      close();
      void render();
    } catch (e) {
      showError(e, dialog);
    }
  };
  const dialog = c.changed
    ? h(
        "div",
        { class: "dialog alarm", id: "cert-alarm", role: "alertdialog" },
        h("h2", {}, "⚠ The certificate of this server CHANGED"),
        h(
          "p",
          {},
          c.pinned
            ? "The server now shows a different certificate from the one you accepted. Someone may be intercepting the connection. Conclave has stopped and sent nothing. Ask your provider whether they replaced their certificate before you do anything."
            : "A certificate authority vouched for this server before, and nothing vouches for the certificate it shows now. Someone may be intercepting the connection. Conclave has stopped and sent nothing. Ask your provider what happened before you do anything.",
        ),
        rows,
        h("p", { class: "reason" }, c.reason),
        h(
          "div",
          { class: "actions" },
          h("button", { id: "cert-refuse", onclick: close }, "Keep the relay stopped"),
        ),
      )
    : h(
        "div",
        { class: "dialog", id: "cert-dialog", role: "dialog" },
        h("h2", {}, "Do you trust this server's certificate?"),
        h(
          "p",
          {},
          "Nothing on this computer vouches for it. Compare the SHA-256 fingerprint with the one your provider gives you before accepting it. Nothing was sent to the server.",
        ),
        rows,
        h("p", { class: "reason" }, `Why: ${c.reason}`),
        h(
          "div",
          { class: "actions" },
          h("button", { id: "cert-refuse", class: "secondary", onclick: close }, "Refuse"),
          h("button", { id: "cert-accept", onclick: accept }, "Accept this certificate"),
        ),
      );
  mount(overlay, h("div", { class: "backdrop" }, dialog));
}

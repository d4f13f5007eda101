// The certificates screen: the server certificates the owner accepted.

import { api } from "../api";
import { h, mount } from "../dom";
import { content } from "../state";

export async function certificates(): Promise<void> {
  const pins = await api.certs();
  mount(
    content,
    h("h2", {}, "Certificates"),
    h(
      "p",
      {},
      "Servers are trusted when the public certificate authorities, this computer, or your extra CA vouch for them. These are the certificates you accepted yourself:",
    ),
    pins.length === 0
      ? h("p", { id: "pins-empty" }, "None.")
      : h(
          "table",
          { class: "pins" },
          h("tr", {}, h("th", {}, "Server"), h("th", {}, "Subject"), h("th", {}, "SHA-256"), h("th", {}, "Accepted")),
          ...pins.map((p) =>
            h("tr", {}, h("td", {}, p.endpoint), h("td", {}, p.subject), h("td", {}, h("code", {}, p.sha256)), h("td", {}, p.accepted)),
          ),
        ),
  );
}

// The activity screen: the list's log, and the log table the dashboard shares.

import { api } from "../api";
import { h, mount } from "../dom";
import { content } from "../state";

export function logTable(lines: { at: string; post: number | null; event: string; detail: string }[]): HTMLElement {
  return h(
    "table",
    { class: "log" },
    h("tr", {}, h("th", {}, "When"), h("th", {}, "Post"), h("th", {}, "What"), h("th", {}, "Details")),
    ...lines.map((l) =>
      h("tr", {}, h("td", {}, l.at), h("td", {}, l.post === null ? "" : `#${l.post}`), h("td", {}, l.event), h("td", {}, l.detail)),
    ),
  );
}

export async function activity(): Promise<void> {
  mount(content, h("h2", {}, "Activity"), logTable(await api.activity()));
}

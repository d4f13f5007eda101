// The settings screen: the server passwords and the list's policy.

import { api } from "../api";
import { h, mount, value } from "../dom";
import { notify, showError } from "../feedback";
import { content, render } from "../state";

function passwordRows(infos: Awaited<ReturnType<typeof api.passwords>>): HTMLElement {
  return h(
    "table",
    { class: "settings", id: "passwords" },
    ...infos.map((p) => {
      const id = `pw-${p.server}`;
      return h(
        "tr",
        {},
        h("td", {}, h("strong", {}, `${p.server.toUpperCase()} password`), h("br"), h("small", { id: `${id}-source` }, `kept in ${p.source}`)),
        h(
          "td",
          {},
          h("input", { id, type: "password", placeholder: "new password" }),
          h(
            "button",
            {
              id: `${id}-save`,
              class: "small",
              onclick: async () => {
                try {
                  const inFile = p.kind === "file";
                  notify(`The ${p.server} password is kept in ${await api.passwordSet(p.server, value(id), inFile)}.`);
                  void render();
                } catch (e) {
                  showError(e, content);
                }
              },
            },
            "Save",
          ),
        ),
      );
    }),
  );
}

export async function settings(): Promise<void> {
  const list = await api.settings();
  const passwords = await api.passwords();
  const ACTIONS = ["distribute", "hold", "reject", "discard"];
  mount(
    content,
    h("h2", {}, "Settings"),
    h("h3", {}, "Server passwords"),
    passwordRows(passwords),
    h("h3", {}, "List policy"),
    h(
      "table",
      { class: "settings" },
      ...list.map((s) => {
        const id = `set-${s.key.replace(/\./g, "-")}`;
        const isAction = ACTIONS.includes(s.default) || s.key.endsWith("_action");
        const input = isAction
          ? h(
              "select",
              { id },
              // Larger posts cannot simply go through.
              ...ACTIONS.filter((a) => !(s.key === "max_message_size_action" && a === "distribute")).map((a) =>
                h("option", { value: a, selected: a === s.value }, a),
              ),
            )
          : h("input", { id, value: s.value });
        const save = async () => {
          try {
            await api.settingSet(s.key, value(id));
            notify(`${s.key} is now ${value(id)}`);
          } catch (e) {
            showError(e, content);
            void render();
          }
        };
        input.addEventListener("change", save);
        return h("tr", {}, h("td", {}, h("strong", {}, s.key), h("br"), h("small", {}, s.help)), h("td", {}, input));
      }),
    ),
  );
}

// The subscribers screen: who is on the list with which key, how their copies
// fare (bounces), and adding, importing, re-enabling or removing them. The
// list is shown a page at a time, searched by address or fingerprint, so it
// stays quick with 100,000 subscribers.

import { api } from "../api";
import { field, h, mount, value } from "../dom";
import { showError } from "../feedback";
import { spaced } from "../format";
import { content, render } from "../state";
import { replaceKeyBox } from "../dialogs/replace-key";
import { inviteDialog } from "../dialogs/invite";
import type { ImportResult } from "../bindings/ImportResult";

const PER_PAGE = 50;

// Kept across redraws: the search, the page, and the last import's report.
let search = "";
let page = 1;
let lastImport: ImportResult | null = null;
let searchTimer: number | undefined;

// At most this many lines of one kind are drawn: an import of 100,000 keys
// reports every line, and the page must stay light.
const REPORT_LINES = 500;

function importTable(lines: ImportResult["lines"]): HTMLElement {
  const shown = lines.slice(0, REPORT_LINES);
  return h(
    "table",
    { class: "import-lines" },
    h("tr", {}, h("th", {}, "Outcome"), h("th", {}, "Address"), h("th", {}, "Key"), h("th", {}, "Why")),
    ...shown.map((l) =>
      h(
        "tr",
        { class: `import-${l.outcome}` },
        h("td", { class: l.outcome === "refused" || l.outcome === "skipped" ? "warning" : "" }, l.outcome),
        h("td", {}, l.address || "—"),
        h("td", {}, l.fingerprint ? h("code", {}, spaced(l.fingerprint)) : "—"),
        h("td", {}, [l.reason ?? "", ...l.notes].filter((x) => x).join("; ")),
      ),
    ),
    lines.length > shown.length
      ? h("tr", {}, h("td", { colspan: 4 }, `… and ${lines.length - shown.length} more`))
      : null,
  );
}

function importReport(r: ImportResult): HTMLElement {
  // What needs the owner's eye first, in full; what went well folded away.
  const problems = r.lines.filter((l) => l.outcome === "refused" || l.outcome === "skipped" || l.notes.length > 0);
  const fine = r.lines.filter((l) => !problems.includes(l));
  return h(
    "div",
    { id: "sub-import-result" },
    h(
      "div",
      { class: "screen-head" },
      h("p", { id: "sub-import-summary" }, r.summary),
      h(
        "button",
        {
          id: "sub-import-close",
          class: "secondary small",
          onclick: () => {
            lastImport = null;
            void render();
          },
        },
        "Close",
      ),
    ),
    problems.length > 0 ? importTable(problems) : null,
    fine.length > 0
      ? h("details", { id: "sub-import-fine" }, h("summary", {}, `${fine.length} subscribed as asked`), importTable(fine))
      : null,
  );
}

function importPanel(): HTMLElement {
  const panel: HTMLElement = h(
    "div",
    { class: "add", id: "sub-import" },
    h("h3", {}, "Import subscribers"),
    h(
      "p",
      {},
      h(
        "small",
        {},
        "A keyring (armored or binary) subscribes every usable key's addresses. With a CSV file (address, or address,fingerprint per line) only the addresses it names; with a Schleuder list's subscriptions (schleuder-cli subscriptions list, or the API's JSON) the list moves in one step.",
      ),
    ),
    field("sub-import-keyring", "Keyring file (full path)", { placeholder: "/home/you/keys.asc" }),
    field("sub-import-csv", "CSV file (optional)", { placeholder: "/home/you/members.csv" }),
    field("sub-import-schleuder", "Schleuder subscriptions (optional)", { placeholder: "/home/you/subscriptions.txt" }),
    h(
      "button",
      {
        id: "sub-import-run",
        onclick: async () => {
          try {
            lastImport = await api.subscribersImport(
              value("sub-import-keyring"),
              value("sub-import-csv"),
              value("sub-import-schleuder"),
            );
            void render();
          } catch (e) {
            showError(e, panel);
          }
        },
      },
      "Import",
    ),
  );
  return panel;
}

export async function subscribers(): Promise<void> {
  let found = await api.subscriberPage(search, page, PER_PAGE);
  if (found.subscribers.length === 0 && page > 1) {
    // The page went away (a search, a removal): show the last one.
    page = Math.max(1, Math.ceil(found.total / PER_PAGE));
    found = await api.subscriberPage(search, page, PER_PAGE);
  }
  const subs = found.subscribers;
  const from = (found.page - 1) * found.per_page;
  const shown =
    found.total === 0
      ? search
        ? `no subscriber matches “${search}”`
        : "no subscribers yet"
      : subs.length === found.total
        ? `${found.total} subscriber${found.total === 1 ? "" : "s"}${search ? ` matching “${search}”` : ""}`
        : `${from + 1}–${from + subs.length} of ${found.total}${search ? ` matching “${search}”` : ""}`;
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
            const current = await api.subscriberFingerprint(address);
            if (current) {
              const fpr = await api.keyFingerprint(key);
              if (fpr !== current) {
                document.getElementById("sub-replace")?.remove();
                const box = replaceKeyBox("sub-replace-key", address, current, fpr, key, () => void render());
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
        "div",
        {},
        h(
          "button",
          {
            id: "sub-import-open",
            class: "secondary",
            onclick: () => {
              const panel = document.getElementById("sub-import");
              if (panel) panel.remove();
              else document.getElementById("sub-pager")?.before(importPanel());
            },
          },
          "Import…",
        ),
        " ",
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
    ),
    lastImport ? importReport(lastImport) : null,
    h(
      "div",
      { class: "pager", id: "sub-pager" },
      h("input", {
        id: "sub-search",
        type: "search",
        placeholder: "Search address or fingerprint",
        value: search,
        oninput: (e: Event) => {
          const text = (e.target as HTMLInputElement).value;
          window.clearTimeout(searchTimer);
          searchTimer = window.setTimeout(() => {
            search = text.trim();
            page = 1;
            void render().then(() => {
              const box = document.getElementById("sub-search") as HTMLInputElement | null;
              if (box) {
                box.focus();
                box.setSelectionRange(box.value.length, box.value.length);
              }
            });
          }, 250);
        },
      }),
      h(
        "button",
        {
          id: "sub-prev",
          class: "secondary small",
          disabled: found.page <= 1,
          onclick: () => {
            page = Math.max(1, found.page - 1);
            void render();
          },
        },
        "‹ Previous",
      ),
      h("span", { id: "sub-total" }, shown),
      h(
        "button",
        {
          id: "sub-next",
          class: "secondary small",
          disabled: from + subs.length >= found.total,
          onclick: () => {
            page = found.page + 1;
            void render();
          },
        },
        "Next ›",
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

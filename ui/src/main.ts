// Conclave's window: the first-run wizard, then the screens of a running
// list. Every action goes through `api`; every change the engine makes
// arrives as an event.

import { api, failure, onEvent } from "./api";
import type { Certificate } from "./bindings/Certificate";
import type { Failure } from "./bindings/Failure";
import type { Status } from "./bindings/Status";
import type { UiEvent } from "./bindings/UiEvent";
import { field, h, mount, value } from "./dom";

const app = document.getElementById("app") as HTMLElement;
const overlay = document.getElementById("overlay") as HTMLElement;

type Screen = "dashboard" | "moderation" | "subscribers" | "key" | "card" | "certificates" | "settings" | "activity";
let screen: Screen = "dashboard";
let status: Status | null = null;
/** What the dashboard shows of the servers, from the latest events. */
const live = {
  connection: "not connected yet",
  ok: false,
  progress: null as null | { done: number; total: number },
  lastError: "",
};

// ---------------------------------------------------------------- start

async function start(): Promise<void> {
  status = await api.status();
  if (!status.initialised) return wizard();
  if (!status.unlocked) return unlockScreen();
  return shell();
}

onEvent((e: UiEvent) => {
  follow(e);
  // Only the dashboard follows events live; other screens keep what the
  // owner is reading or typing.
  if (status?.unlocked && screen === "dashboard") scheduleRender();
});

/** Updates what the dashboard shows of the relay from one event. */
function follow(e: UiEvent): void {
  switch (e.type) {
    case "pass":
      live.connection = `connected; last pass sent ${e.sent}, failed ${e.failed}, deferred ${e.deferred}`;
      live.ok = true;
      live.progress = null;
      live.lastError = "";
      break;
    case "progress":
      live.progress = { done: e.done, total: e.total };
      break;
    case "error":
      live.ok = false;
      live.lastError = e.failure.message;
      live.connection = e.fatal ? "stopped: needs you" : "retrying";
      if (e.failure.certificate) certificateDialog(e.failure.certificate);
      break;
    case "post":
      if (e.held) notify(`A post is waiting for you (#${e.post})`);
      break;
    case "pin_needed":
      pinDialog(e.ident, e.kind, e.tries_left);
      break;
    case "stopped":
      if (live.ok) live.connection = "stopped";
      break;
    default:
      break;
  }
}

/** Re-renders at most four times a second: a post to 1000 subscribers sends
 * 1000 progress events. */
let renderPending = false;
function scheduleRender(): void {
  if (renderPending) return;
  renderPending = true;
  setTimeout(() => {
    renderPending = false;
    if (screen === "dashboard") void render();
  }, 250);
}

function notify(text: string): void {
  const n = h("div", { class: "toast" }, text);
  document.body.append(n);
  setTimeout(() => n.remove(), 6000);
}

function showError(e: unknown, where?: HTMLElement): void {
  const f: Failure = failure(e);
  if (f.certificate) {
    certificateDialog(f.certificate);
    return;
  }
  const box = h("p", { class: "error", role: "alert" }, f.message);
  if (where) {
    where.querySelector(".error")?.remove();
    where.prepend(box);
  } else {
    notify(f.message);
  }
}

// ---------------------------------------------------------------- wizard

const PORTS: Record<string, Record<string, number>> = {
  imap: { tls: 993, starttls: 143 },
  smtp: { tls: 465, starttls: 587 },
};

function serverFields(kind: "imap" | "smtp", title: string): HTMLElement {
  const port = h("input", { id: `wiz-${kind}-port`, type: "number", value: PORTS[kind].tls });
  const security = h(
    "select",
    {
      id: `wiz-${kind}-security`,
      onchange: () => {
        (port as HTMLInputElement).value = String(PORTS[kind][value(`wiz-${kind}-security`)]);
      },
    },
    h("option", { value: "tls" }, "Implicit TLS (recommended)"),
    h("option", { value: "starttls" }, "STARTTLS (mandatory)"),
  );
  return h(
    "fieldset",
    {},
    h("legend", {}, title),
    field(`wiz-${kind}-host`, "Server", { placeholder: `${kind}.example.org` }),
    h("label", { class: "field" }, h("span", {}, "Security"), security),
    h("label", { class: "field" }, h("span", {}, "Port"), port),
    field(`wiz-${kind}-user`, "Login", { placeholder: "list@example.org" }),
    field(`wiz-${kind}-password`, "Password", { type: "password" }),
  );
}

function wizard(): void {
  let step = 0;
  const steps = [
    h(
      "section",
      { class: "step", id: "wiz-step-list" },
      h("h2", {}, "Your list"),
      h("p", {}, "The list is an ordinary mailbox at your mail provider. Conclave watches it from this computer."),
      field("wiz-address", "List address", { placeholder: "list@example.org", type: "email" }),
      field("wiz-name", "Name", { placeholder: "Our list" }),
    ),
    h(
      "section",
      { class: "step", id: "wiz-step-servers" },
      h("h2", {}, "Mail servers"),
      serverFields("imap", "Incoming (IMAP): where posts arrive"),
      serverFields("smtp", "Outgoing (SMTP): where copies are sent"),
      field("wiz-ca-file", "Extra CA certificate (optional)", { placeholder: "/path/to/ca.pem" }),
      h(
        "p",
        { class: "hint" },
        "The passwords go to your desktop's keyring (GNOME Keyring, KWallet, KeePassXC). A server whose certificate nothing vouches for is shown to you before anything is sent.",
      ),
      h(
        "label",
        { class: "choice" },
        h("input", { type: "checkbox", id: "wiz-passwords-in-files" }),
        " No keyring here: keep the passwords in files only I can read (mode 0600) in the list's folder",
      ),
    ),
    h(
      "section",
      { class: "step", id: "wiz-step-key" },
      h("h2", {}, "The list key"),
      h(
        "label",
        { class: "choice" },
        h("input", { type: "radio", name: "wiz-key", id: "wiz-key-generate", value: "generate", checked: true }),
        " Make a new key (Ed25519 + Cv25519)",
      ),
      h(
        "label",
        { class: "choice" },
        h("input", { type: "radio", name: "wiz-key", id: "wiz-key-import", value: "import" }),
        " Use a key I have (paste the armored secret key)",
      ),
      h("textarea", { id: "wiz-key-armored", rows: 4, placeholder: "-----BEGIN PGP PRIVATE KEY BLOCK-----" }),
      h(
        "label",
        { class: "choice" },
        h("input", {
          type: "radio",
          name: "wiz-key",
          id: "wiz-key-card",
          value: "card",
          onchange: () => void fillCards("wiz-card", "wiz-card-none"),
        }),
        " Make a new key and move it onto an OpenPGP card (YubiKey, Nitrokey…); no copy stays on this computer",
      ),
      h("select", { id: "wiz-card" }),
      h("p", { class: "hint", id: "wiz-card-none", hidden: true }, "No OpenPGP card found: plug one in and choose this again."),
      field("wiz-passphrase", "Passphrase that protects the key", { type: "password" }),
      field("wiz-passphrase2", "Passphrase again", { type: "password" }),
    ),
  ];
  const back = h("button", { id: "wiz-back", class: "secondary" }, "Back");
  const next = h("button", { id: "wiz-next" }, "Next");
  const body = h("div", { class: "wizard-body" });
  // All steps stay in the page (hidden but one), so what was typed survives
  // Back and Next and every field can be read at the end.
  mount(body, steps);
  const show = () => {
    steps.forEach((s, i) => {
      s.hidden = i !== step;
    });
    (back as HTMLButtonElement).disabled = step === 0;
    next.textContent = step === steps.length - 1 ? "Create the list" : "Next";
    next.id = step === steps.length - 1 ? "wiz-finish" : "wiz-next";
  };
  back.addEventListener("click", () => {
    if (step > 0) step -= 1;
    show();
  });
  next.addEventListener("click", async () => {
    if (step === 0) {
      const address = value("wiz-address").trim();
      if (!address.includes("@")) return showError("The list address is an e-mail address.", body);
      for (const kind of ["imap", "smtp"]) {
        const user = document.getElementById(`wiz-${kind}-user`) as HTMLInputElement;
        if (!user.value) user.value = address;
      }
    }
    if (step < steps.length - 1) {
      step += 1;
      return show();
    }
    if (value("wiz-passphrase") !== value("wiz-passphrase2"))
      return showError("The two passphrases differ.", body);
    if (value("wiz-passphrase").length < 8) return showError("Use a passphrase of 8 characters or more.", body);
    const importing = (document.getElementById("wiz-key-import") as HTMLInputElement).checked;
    const onCard = (document.getElementById("wiz-key-card") as HTMLInputElement).checked;
    if (onCard && !value("wiz-card")) return showError("Choose the card, or another kind of key.", body);
    const server = (kind: "imap" | "smtp") => ({
      host: value(`wiz-${kind}-host`).trim(),
      port: Number(value(`wiz-${kind}-port`)),
      security: value(`wiz-${kind}-security`),
      username: value(`wiz-${kind}-user`).trim(),
      password: value(`wiz-${kind}-password`),
    });
    next.setAttribute("disabled", "");
    try {
      status = await api.setup({
        address: value("wiz-address").trim(),
        name: value("wiz-name").trim() || value("wiz-address").trim(),
        passphrase: value("wiz-passphrase"),
        key: onCard
          ? { kind: "card", ident: value("wiz-card") }
          : importing
            ? { kind: "import", armored: value("wiz-key-armored") }
            : { kind: "generate" },
        imap: server("imap"),
        smtp: server("smtp"),
        ca_file: value("wiz-ca-file").trim(),
        passwords_in_files: (document.getElementById("wiz-passwords-in-files") as HTMLInputElement).checked,
      });
      shell();
    } catch (e) {
      next.removeAttribute("disabled");
      showError(e, body);
    }
  });
  mount(
    app,
    h(
      "main",
      { class: "wizard", id: "wizard" },
      h("h1", {}, "Welcome to Conclave"),
      body,
      h("div", { class: "actions" }, back, next),
    ),
  );
  show();
}

function unlockScreen(): void {
  const box = h(
    "main",
    { class: "wizard", id: "unlock" },
    h("h1", {}, status?.name || "Conclave"),
    h("p", {}, `The key of ${status?.address} is locked.`),
    field("unlock-passphrase", "Passphrase", { type: "password" }),
    h(
      "div",
      { class: "actions" },
      h(
        "button",
        {
          id: "unlock-button",
          onclick: async () => {
            try {
              status = await api.unlock(value("unlock-passphrase"));
              shell();
            } catch (e) {
              showError(e, box);
            }
          },
        },
        "Unlock",
      ),
    ),
  );
  mount(app, box);
}

// ---------------------------------------------------------------- shell

const NAV: [Screen, string][] = [
  ["dashboard", "Dashboard"],
  ["moderation", "Moderation"],
  ["subscribers", "Subscribers"],
  ["key", "List key"],
  ["card", "Card"],
  ["certificates", "Certificates"],
  ["settings", "Settings"],
  ["activity", "Activity"],
];

const content = h("section", { class: "content", id: "content" });

function shell(): void {
  const nav = h(
    "nav",
    {},
    h("div", { class: "brand" }, h("img", { src: "/icon.png", alt: "" }), h("span", {}, status?.name ?? "Conclave")),
    ...NAV.map(([id, label]) =>
      h(
        "button",
        {
          id: `nav-${id}`,
          class: id === screen ? "active" : "",
          onclick: () => {
            screen = id;
            shell();
          },
        },
        label,
      ),
    ),
  );
  mount(app, h("div", { class: "shell" }, nav, content));
  void render();
}

/** Renders the current screen. Renders run one after another, so a slow
 * one (the Card screen asks PC/SC) never paints over the screen the owner
 * went to next. */
let rendering: Promise<void> = Promise.resolve();
function render(): Promise<void> {
  rendering = rendering.then(renderNow, renderNow);
  return rendering;
}

async function renderNow(): Promise<void> {
  try {
    switch (screen) {
      case "dashboard":
        return await dashboard();
      case "moderation":
        return await moderation();
      case "subscribers":
        return await subscribers();
      case "key":
        return await listKey();
      case "card":
        return await cardScreen();
      case "certificates":
        return await certificates();
      case "settings":
        return await settings();
      case "activity":
        return await activity();
    }
  } catch (e) {
    showError(e, content);
  }
}

async function dashboard(): Promise<void> {
  const d = await api.dashboard();
  status = await api.status();
  // The relay may have spoken before this page listened.
  if (!live.ok && !live.lastError && status.last) follow(status.last);
  const tile = (id: string, n: number, label: string) =>
    h("div", { class: "tile", id }, h("strong", {}, String(n)), h("span", {}, label));
  mount(
    content,
    h("h2", {}, "Dashboard"),
    h(
      "div",
      { class: `connection ${live.ok ? "ok" : "bad"}`, id: "connection" },
      h("strong", {}, status.running ? "Relay running" : "Relay stopped"),
      " — IMAP and SMTP: ",
      live.connection,
    ),
    live.lastError ? h("p", { class: "error" }, live.lastError) : null,
    !status.running
      ? h("button", { id: "relay-start", onclick: async () => { await api.relayStart(); void render(); } }, "Start the relay")
      : null,
    live.progress
      ? h(
          "div",
          { class: "progress", id: "progress" },
          h("progress", { max: live.progress.total, value: live.progress.done }),
          ` ${live.progress.done} of ${live.progress.total} copies sent`,
        )
      : null,
    h(
      "div",
      { class: "tiles" },
      tile("count-subscribers", d.subscribers, "subscribers"),
      tile("count-held", d.held, "held for you"),
      tile("count-queued", d.queued, "copies queued"),
      tile("count-sent", d.sent, "copies sent"),
    ),
    h("h3", {}, "Last activity"),
    logTable(d.recent),
  );
}

function logTable(lines: { at: string; post: number | null; event: string; detail: string }[]): HTMLElement {
  return h(
    "table",
    { class: "log" },
    h("tr", {}, h("th", {}, "When"), h("th", {}, "Post"), h("th", {}, "What"), h("th", {}, "Details")),
    ...lines.map((l) =>
      h("tr", {}, h("td", {}, l.at), h("td", {}, l.post === null ? "" : `#${l.post}`), h("td", {}, l.event), h("td", {}, l.detail)),
    ),
  );
}

async function moderation(): Promise<void> {
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
                  h("h3", { id: "held-subject" }, v.subject || "(no subject)"),
                  h("p", {}, h("strong", {}, "From: "), v.sender),
                  h("p", {}, h("strong", {}, "Held because: "), v.reason),
                  h("p", { id: "held-signature" }, h("strong", {}, "Signature: "), v.signature),
                  h("pre", { id: "held-text" }, v.text),
                  ...v.keys.map((k, i) => {
                    const address = k.addresses.includes(v.sender) ? v.sender : (k.addresses[0] ?? v.sender);
                    return h(
                      "div",
                      { class: "attached-key" },
                      h("span", {}, "Attached key ", h("code", {}, spaced(k.fingerprint)), ` for ${k.addresses.join(", ") || "no address"}`),
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
                  field("held-reason", "Reason (for a rejection)"),
                  h(
                    "div",
                    { class: "actions" },
                    h("button", { id: "held-approve", onclick: decide("approve") }, "Approve"),
                    h("button", { id: "held-reject", class: "secondary", onclick: decide("reject") }, "Reject"),
                    h("button", { id: "held-discard", class: "danger", onclick: decide("discard") }, "Discard"),
                  ),
                );
              } catch (e) {
                showError(e, detail);
              }
            },
          },
          h("strong", {}, `#${p.id} ${p.sender || "(unknown sender)"}`),
          h("span", {}, p.reason),
          h("small", {}, p.received),
        ),
      ),
    ),
    detail,
  );
}

async function subscribers(): Promise<void> {
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
            await api.subscriberAdd(value("sub-address").trim(), value("sub-key"));
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
    h("h2", {}, "Subscribers"),
    h(
      "table",
      { class: "subs" },
      h("tr", {}, h("th", {}, "Address"), h("th", {}, "Key"), h("th", {}, "")),
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
            {},
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

async function certificates(): Promise<void> {
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

async function listKey(): Promise<void> {
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

/** Fills the select `id` with the cards the readers see. */
async function fillCards(id: string, noneId: string | null): Promise<void> {
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

async function cardScreen(): Promise<void> {
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

async function settings(): Promise<void> {
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

async function activity(): Promise<void> {
  mount(content, h("h2", {}, "Activity"), logTable(await api.activity()));
}

// ---------------------------------------------------------------- card PIN

function pinDialog(ident: string, kind: string, triesLeft: number): void {
  const answer = async (pin: string | null) => {
    mount(overlay);
    await api.pinAnswer(pin);
  };
  const input = h("input", { id: "pin-input", type: "password", autocomplete: "off" });
  input.addEventListener("keydown", (e: Event) => {
    if ((e as KeyboardEvent).key === "Enter") void answer((input as HTMLInputElement).value);
  });
  mount(
    overlay,
    h(
      "div",
      { class: "backdrop" },
      h(
        "div",
        { class: "dialog", id: "pin-dialog", role: "dialog" },
        h("h2", {}, `The OpenPGP card ${ident} needs its ${kind} PIN`),
        h(
          "p",
          {},
          `${triesLeft} ${triesLeft === 1 ? "try is" : "tries are"} left before the card blocks the PIN. Conclave keeps the PIN in memory only, until it closes.`,
        ),
        h("label", { class: "field" }, h("span", {}, "PIN"), input),
        h(
          "div",
          { class: "actions" },
          h("button", { id: "pin-cancel", class: "secondary", onclick: () => void answer(null) }, "Cancel"),
          h("button", { id: "pin-ok", onclick: () => void answer((input as HTMLInputElement).value) }, "Unlock"),
        ),
      ),
    ),
  );
  (input as HTMLInputElement).focus();
}

// ---------------------------------------------------------------- certificates

/** Groups a fingerprint in fours for reading aloud. */
function spaced(hex: string): string {
  return hex.toUpperCase().replace(/(.{4})/g, "$1 ").trim();
}

function certificateDialog(c: Certificate): void {
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
      status = await api.certAccept(c.endpoint, c.sha256);
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
          "The server now shows a different certificate from the one you accepted. Someone may be intercepting the connection. Conclave has stopped and sent nothing. Ask your provider whether they replaced their certificate before you do anything.",
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

void start().catch((e) => showError(e));

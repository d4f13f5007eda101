// The first-run wizard: the list's address, its mail servers and its key.

import { api } from "./api";
import { field, h, mount, value } from "./dom";
import { showError } from "./feedback";
import { fillCards } from "./screens/card";
import { app, state } from "./state";

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

/** Shows the wizard; `done` runs once the list is set up. */
export function wizard(done: () => void): void {
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
      state.status = await api.setup({
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
      done();
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

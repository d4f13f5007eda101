// The requests screen: subscriptions, key changes and unsubscriptions asked
// by mail. Those whose key is proven wait for the owner to approve or refuse
// them; the others still wait for the requester's answer.

import { api } from "../api";
import type { PendingRequest } from "../bindings/PendingRequest";
import { field, h, mount, value } from "../dom";
import { notify, showError } from "../feedback";
import { spaced } from "../format";
import { content, render } from "../state";

export async function requests(): Promise<void> {
  const pending = await api.requests();
  const owner = pending.filter((r) => r.awaiting_owner);
  const proof = pending.filter((r) => !r.awaiting_owner);
  mount(
    content,
    h("h2", {}, "Requests"),
    h(
      "p",
      { class: "hint" },
      "People ask to join, leave or change their key by writing to the list's request address. Each proves first that they hold the key, then waits for you.",
    ),
    h("h3", {}, "Waiting for you"),
    owner.length === 0 ? h("p", { id: "requests-empty" }, "No request is waiting for you.") : null,
    ...owner.map(requestCard),
    proof.length > 0 ? h("h3", {}, "Waiting for the requester to prove their key") : null,
    ...proof.map(requestCard),
  );
}

/** What the owner needs to decide one request, and the buttons to do it. */
function requestCard(r: PendingRequest): HTMLElement {
  const card: HTMLElement = h(
    "div",
    { class: "card request", id: `request-${r.id}`, "data-id": r.id },
    h("h4", {}, `#${r.id} ${r.kind}: ${r.address}`),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, r.kind === "key change" ? "New key" : "Key"),
      h("dd", {}, h("code", { class: "request-fingerprint" }, spaced(r.key.fingerprint))),
      r.old_fingerprint ? h("dt", {}, "Replacing") : null,
      r.old_fingerprint ? h("dd", {}, h("code", {}, spaced(r.old_fingerprint))) : null,
      h("dt", {}, "Algorithm"),
      h("dd", {}, `${r.key.algorithm}; ${r.key.expires ? `expires ${r.key.expires}` : "does not expire"}`),
      h("dt", {}, "User IDs"),
      h("dd", {}, r.key.addresses.join(", ") || "none valid"),
      h("dt", {}, "Asked"),
      h("dd", {}, r.asked),
      h("dt", {}, "Key proven"),
      h("dd", { class: "request-proven" }, r.proven ?? "not yet"),
      h("dt", {}, "Waits for"),
      h(
        "dd",
        { class: "request-waits" },
        r.awaiting_owner ? "you" : `the requester's answer, until ${r.proof_until}`,
      ),
    ),
    r.key.warning ? h("div", { class: "warning" }, r.key.warning) : null,
  );
  if (!r.awaiting_owner) return card;
  const decide = (refuse: boolean) => async () => {
    try {
      if (refuse) {
        await api.requestRefuse(r.id, value(`request-reason-${r.id}`));
        notify(`The ${r.kind} of ${r.address} was refused; they are told.`);
      } else {
        notify(await api.requestApprove(r.id));
      }
      void render();
    } catch (e) {
      showError(e, card);
    }
  };
  card.append(
    field(`request-reason-${r.id}`, "Reason (for a refusal)", { class: "request-reason" }),
    h(
      "div",
      { class: "actions" },
      h("button", { id: `request-approve-${r.id}`, class: "request-approve", onclick: decide(false) }, "Approve"),
      h("button", { id: `request-refuse-${r.id}`, class: "secondary request-refuse", onclick: decide(true) }, "Refuse"),
    ),
  );
  return card;
}

// Telling the owner: passing notices, and errors shown in place or as a certificate question.

import { failure } from "./api";
import type { Failure } from "./bindings/Failure";
import { certificateDialog } from "./dialogs/certificate";
import { h } from "./dom";

export function notify(text: string): void {
  const n = h("div", { class: "toast" }, text);
  document.body.append(n);
  setTimeout(() => n.remove(), 6000);
}

export function showError(e: unknown, where?: HTMLElement): void {
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

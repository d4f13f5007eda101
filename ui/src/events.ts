// What the engine's events change: the relay as the dashboard shows it, and
// the notices and dialogs some events open.

import type { UiEvent } from "./bindings/UiEvent";
import { certificateDialog } from "./dialogs/certificate";
import { pinDialog } from "./dialogs/pin";
import { notify } from "./feedback";

/** What the dashboard shows of the servers, from the latest events. */
export const live = {
  connection: "not connected yet",
  ok: false,
  progress: null as null | { done: number; total: number },
  lastError: "",
};

/** Updates what the dashboard shows of the relay from one event. */
export function follow(e: UiEvent): void {
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
    case "notice":
      notify(e.message);
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

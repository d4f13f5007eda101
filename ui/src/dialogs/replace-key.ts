// Replacing a subscriber's key: never a side effect of adding one. The owner
// sees both fingerprints, in red, and presses a button that says exactly
// what it does.

import { api } from "../api";
import { h } from "../dom";
import { notify, showError } from "../feedback";
import { spaced } from "../format";

/**
 * A red box offering to replace `address`'s key `oldFpr` with `key`
 * (armored, fingerprint `newFpr`). `id` names the button for the tests.
 */
export function replaceKeyBox(
  id: string,
  address: string,
  oldFpr: string,
  newFpr: string,
  key: string,
  done: () => void,
): HTMLElement {
  const box: HTMLElement = h(
    "div",
    { class: "replace-key" },
    h(
      "p",
      {},
      `${address} is subscribed with another key. Replacing it sends every later copy for ${address} to the new key; copies still queued for the old key are dropped. Do it only if ${address} told you, in a way you trust, that this is their new key.`,
    ),
    h(
      "button",
      {
        id,
        class: "danger",
        onclick: async () => {
          try {
            const dropped = await api.subscriberReplaceKey(address, oldFpr, key);
            notify(
              `${address}'s key was replaced` + (dropped > 0 ? ` (${dropped} queued copies for the old key dropped).` : "."),
            );
            done();
          } catch (e) {
            showError(e, box);
          }
        },
      },
      `Replace ${address}'s key ${spaced(oldFpr)} with ${spaced(newFpr)}`,
    ),
  );
  return box;
}

// What the modules share: the page's containers, the latest status, and the render queue.

import type { Status } from "./bindings/Status";
import { h } from "./dom";

export const app = document.getElementById("app") as HTMLElement;
export const overlay = document.getElementById("overlay") as HTMLElement;
/** Where the current screen of the running list is drawn. */
export const content = h("section", { class: "content", id: "content" });

/** The engine's status as last read. */
export const state = {
  status: null as Status | null,
};

/** Draws the current screen; main.ts sets it, as it knows the screens. */
let renderScreen: () => Promise<void> = () => Promise.resolve();

export function setRenderer(f: () => Promise<void>): void {
  renderScreen = f;
}

/** Renders the current screen. Renders run one after another, so a slow
 * one (the Card screen asks PC/SC) never paints over the screen the owner
 * went to next. */
let rendering: Promise<void> = Promise.resolve();
export function render(): Promise<void> {
  rendering = rendering.then(renderScreen, renderScreen);
  return rendering;
}

// A small DOM helper: the UI has a handful of screens, so plain elements
// built in code are enough, and nothing here needs keeping up to date.

type Attrs = Record<string, string | boolean | number | ((e: Event) => void) | undefined>;
type Child = Node | string | null | undefined | false;

/** Builds an element: `h("button", { id: "ok", onclick: f }, "OK")`. */
export function h(tag: string, attrs: Attrs = {}, ...children: (Child | Child[])[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (typeof v === "function") {
      el.addEventListener(k.replace(/^on/, ""), v);
    } else if (v === true) {
      el.setAttribute(k, "");
    } else {
      el.setAttribute(k, String(v));
    }
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return el;
}

/** Replaces the content of `parent`. */
export function mount(parent: HTMLElement, ...children: (Child | Child[])[]): void {
  parent.replaceChildren();
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    parent.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
}

/** The value of the input or select with this id. */
export function value(id: string): string {
  const el = document.getElementById(id) as HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement | null;
  return el ? el.value : "";
}

/** A labelled input row. */
export function field(id: string, label: string, attrs: Attrs = {}): HTMLElement {
  return h("label", { class: "field", for: id }, h("span", {}, label), h("input", { id, name: id, ...attrs }));
}

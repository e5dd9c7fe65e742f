/** The element with this id; throws if the page lacks it (a bug in index.html). */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing from the page`);
  return el as T;
}

/** Creates an element with a class and optional text. */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls = '', text = ''): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text) e.textContent = text;
  return e;
}

/** Sets text only when it differs, sparing layout work on unchanged cells. */
export function setText(e: Element, text: string): void {
  if (e.textContent !== text) e.textContent = text;
}

/** Shows msg in a message element; kind "error" styles it as one. */
export function say(e: HTMLElement, msg: string, kind: 'info' | 'error' = 'info'): void {
  e.textContent = msg;
  e.classList.toggle('error', kind === 'error' && msg !== '');
}

// History-API routing: every page has a real URL (/devices/12/kvm) that the console answers with the app.
// A page renders into the main element and may return a cleanup (close sockets, stop timers) run on leaving.

export type Cleanup = () => void;
export type Page = (main: HTMLElement, params: string[]) => Promise<Cleanup | void> | Cleanup | void;

interface Route {
  pattern: RegExp;
  page: Page;
}

const routes: Route[] = [];
let cleanup: Cleanup | null = null;
let render: ((page: Page, params: string[]) => Promise<Cleanup | void>) | null = null;

export function route(pattern: RegExp, page: Page): void {
  routes.push({ pattern, page });
}

export function start(renderPage: (page: Page, params: string[]) => Promise<Cleanup | void>): void {
  render = renderPage;
  window.addEventListener("popstate", () => void show(location.pathname));
  document.addEventListener("click", (event) => {
    const link = (event.target as Element | null)?.closest?.("a");
    if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
    if (link.target || link.hasAttribute("download") || link.origin !== location.origin) return;
    if (link.pathname.startsWith("/api/")) return;
    event.preventDefault();
    navigate(link.pathname + link.search);
  });
}

export function navigate(path: string, replace = false): void {
  if (replace) history.replaceState(null, "", path);
  else if (path !== location.pathname + location.search) history.pushState(null, "", path);
  void show(location.pathname);
}

/** Change the address bar without re-rendering (a tab of the same page). */
export function remember(path: string): void {
  if (path !== location.pathname) history.replaceState(null, "", path);
}

async function show(path: string): Promise<void> {
  if (cleanup) {
    const done = cleanup;
    cleanup = null;
    done();
  }
  for (const { pattern, page } of routes) {
    const match = pattern.exec(path);
    if (match && render) {
      cleanup = (await render(page, match.slice(1))) || null;
      return;
    }
  }
}

// The outband console's web UI: sign-in, then a header with the sections the role may see and the page.

import "./styles.css";
import { post } from "./api";
import { fill, h } from "./dom";
import { auditPage } from "./pages/audit";
import { devicePage } from "./pages/device";
import { fleetPage } from "./pages/fleet";
import { imagesPage } from "./pages/images";
import { jobPage, jobsPage } from "./pages/jobs";
import { loginPage } from "./pages/login";
import { usersPage } from "./pages/users";
import { navigate, route, start, type Cleanup, type Page } from "./router";
import { P, can, forget, loadMe, me } from "./session";
import { busy } from "./ui";

const app = document.getElementById("app")!;

route(/^\/login$/, loginPage);
route(/^\/$/, fleetPage);
route(/^\/devices\/(\d+)(?:\/([a-z-]+))?$/, devicePage);
route(/^\/jobs$/, jobsPage);
route(/^\/jobs\/(\d+)$/, jobPage);
route(/^\/images$/, imagesPage);
route(/^\/users$/, usersPage);
route(/^\/audit$/, auditPage);
route(/^.*$/, notFoundPage);

function notFoundPage(main: HTMLElement): void {
  fill(main, h("h1", null, "Page not found"), h("p", null, h("a", { href: "/" }, "Back to the fleet")));
}

function layout(): { main: HTMLElement } {
  const who = me()!;
  const links: [string, string, boolean][] = [
    ["/", "Fleet", true],
    ["/jobs", "Jobs", can(P.jobRead)],
    ["/images", "Images", can(P.deviceRead)],
    ["/audit", "Audit trail", can(P.auditRead)],
    ["/users", "Users", can(P.userAdmin)],
  ];
  const signOut = h("button", { type: "button", class: "secondary small", onclick: () => void busy(signOut, async () => {
    await post("/api/auth/logout");
    forget();
    navigate("/login", true);
  }) }, "Sign out");
  const main = h("main", { id: "main", tabindex: "-1" });
  fill(app,
    h("a", { class: "skip-link", href: "#main", onclick: (event: Event) => { event.preventDefault(); main.focus(); } },
      "Skip to content"),
    h("header", { class: "top" },
      h("a", { class: "brand", href: "/" }, "outband"),
      h("nav", { "aria-label": "Main" }, h("ul", null, links.filter(([, , shown]) => shown).map(([href, label]) =>
        h("li", null, h("a", { href, "data-nav": href }, label))))),
      h("div", { class: "account" },
        h("span", { class: "who" }, who.user.username, " ", h("span", { class: "badge role" }, who.role.replace("_", " "))),
        signOut)),
    h("div", { id: "notices", class: "notices", "aria-live": "polite" }),
    main);
  return { main };
}

let shell: { main: HTMLElement } | null = null;

async function render(page: Page, params: string[]): Promise<Cleanup | void> {
  if (page !== loginPage && !me() && !(await loadMe())) {
    navigate(`/login`, true);
    return;
  }
  let main: HTMLElement;
  if (page === loginPage) {
    shell = null;
    main = h("main", { id: "main", tabindex: "-1" });
    fill(app, main);
  } else {
    if (!shell || !app.contains(shell.main)) shell = layout();
    main = shell.main;
    fill(main);
    for (const link of app.querySelectorAll<HTMLAnchorElement>("nav a[data-nav]")) {
      const href = link.dataset.nav!;
      const current = href === "/" ? location.pathname === "/" || location.pathname.startsWith("/devices")
        : location.pathname.startsWith(href);
      if (current) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
  }
  const cleanup = await page(main, params);
  const heading = main.querySelector("h1");
  document.title = heading ? `${heading.textContent} · outband` : "outband console";
  return cleanup;
}

window.addEventListener("outband:signed-out", () => {
  forget();
  if (location.pathname !== "/login") navigate(`/login`, true);
});

start(render);
navigate(location.pathname + location.search, true);

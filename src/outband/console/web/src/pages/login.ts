// Sign in: a session cookie plus the CSRF token cookie the API expects back on unsafe requests.

import { ApiError, post } from "../api";
import { field, fill, h } from "../dom";
import { navigate } from "../router";
import { loadMe } from "../session";

export function loginPage(main: HTMLElement): void {
  const username = h("input", { name: "username", autocomplete: "username", required: true, autocapitalize: "off",
    spellcheck: "false" });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const message = h("p", { class: "error-box", role: "alert", hidden: true });
  const submit = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h("form", { class: "login", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, "Sign in to outband"),
    field("User name", username),
    field("Password", password),
    message,
    submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    message.hidden = true;
    try {
      await post("/api/auth/login", { username: username.value, password: password.value });
      await loadMe();
      const next = new URLSearchParams(location.search).get("next");
      navigate(next && next.startsWith("/") && !next.startsWith("//") ? next : "/", true);
    } catch (error) {
      message.textContent = error instanceof ApiError && error.status === 401
        ? "Wrong user name or password." : error instanceof Error ? error.message : String(error);
      message.hidden = false;
      password.select();
    } finally {
      submit.disabled = false;
    }
  });
  fill(main, h("div", { class: "login-wrap" }, h("p", { class: "brand big" }, "outband"), form));
  username.focus();
}

// Console accounts and their roles (admins only).

import { del, get, patch, post, type Role, type User } from "../api";
import { field, fill, h, timeElement } from "../dom";
import { me } from "../session";
import { busy, confirmAction, errorBox, notify } from "../ui";

const ROLES: [Role, string][] = [
  ["viewer", "Viewer: sees everything, changes nothing"],
  ["power_only", "Power only: power actions and cancelling jobs"],
  ["operator", "Operator: every device operation, remote sessions, schedules"],
  ["admin", "Admin: everything, including accounts"],
];

export async function usersPage(main: HTMLElement): Promise<void> {
  const list = h("div");
  const username = h("input", { name: "new-username", required: true, autocomplete: "off", maxlength: "64",
    pattern: "[A-Za-z0-9][A-Za-z0-9_.@-]*" });
  const password = h("input", { name: "new-password", type: "password", required: true, minlength: "10",
    autocomplete: "new-password" });
  const role = h("select", { name: "new-role" }, ROLES.map(([value, label]) => h("option", { value }, label)));
  const create = h("button", { type: "submit", class: "primary" }, "Create account");
  const form = h("form", { class: "inline-form" }, field("User name", username),
    field("Password", password, "At least 10 characters."), field("Role", role), create);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void busy(create, async () => {
      await post("/api/users", { username: username.value.trim(), password: password.value, role: role.value });
      notify(`Account ${username.value} created.`);
      form.reset();
      await load();
    });
  });
  fill(main, h("div", { class: "page-head" }, h("h1", null, "Console users")),
    h("section", { "aria-labelledby": "accounts-title" }, h("h2", { id: "accounts-title" }, "Accounts"), list),
    h("section", { "aria-labelledby": "new-account-title" }, h("h2", { id: "new-account-title" }, "New account"), form));
  await load();

  async function load(): Promise<void> {
    let users: User[];
    try {
      users = await get<User[]>("/api/users");
    } catch (error) {
      fill(list, errorBox(error));
      return;
    }
    const self = me()?.user.id;
    fill(list, h("div", { class: "table-wrap" }, h("table", { class: "compact" },
      h("caption", { class: "visually-hidden" }, "Accounts"),
      h("thead", null, h("tr", null, ["Name", "Role", "State", "Created", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", null, users.map((user) => {
        const roleChoice = h("select", { "aria-label": `Role of ${user.username}`, disabled: user.id === self },
          ROLES.map(([value]) => h("option", { value }, value.replace("_", " "))));
        roleChoice.value = user.role;
        roleChoice.addEventListener("change", () => void busy(null, async () => {
          await patch(`/api/users/${user.id}`, { role: roleChoice.value });
          notify(`${user.username} is now ${roleChoice.value.replace("_", " ")}.`);
        }));
        const toggle = h("button", { type: "button", class: "secondary small", disabled: user.id === self },
          user.disabled ? "Enable" : "Disable");
        toggle.addEventListener("click", () => void busy(toggle, async () => {
          await patch(`/api/users/${user.id}`, { disabled: !user.disabled });
          await load();
        }));
        const remove = h("button", { type: "button", class: "danger small", disabled: user.id === self }, "Delete");
        remove.addEventListener("click", () => void busy(remove, async () => {
          if (!(await confirmAction(`Delete ${user.username}?`, "Their sessions and API tokens end.", "Delete"))) return;
          await del(`/api/users/${user.id}`);
          await load();
        }));
        return h("tr", null, h("th", { scope: "row" }, user.username), h("td", null, roleChoice),
          h("td", null, user.disabled ? "disabled" : user.locked_until ? "locked" : "active"),
          h("td", null, timeElement(user.created_at)), h("td", null, toggle, " ", remove));
      })))));
  }
}

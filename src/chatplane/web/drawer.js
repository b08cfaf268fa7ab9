// On a phone-width screen the thread list is a drawer over the conversation, opened by the menu button.

const $ = (id) => document.getElementById(id);
const app = $("app");
const menu = $("menu");
const scrim = $("scrim");

export function isPhone() {
  return window.matchMedia("(max-width: 720px)").matches;
}

export function openDrawer() {
  app.classList.add("drawer-open");
  menu.setAttribute("aria-expanded", "true");
  scrim.hidden = false;
  document.querySelector(".thread.current .thread-open, #new-chat")?.focus();
}

export function closeDrawer() {
  if (!app.classList.contains("drawer-open")) return;
  app.classList.remove("drawer-open");
  menu.setAttribute("aria-expanded", "false");
  scrim.hidden = true;
}

menu.addEventListener("click", () => (app.classList.contains("drawer-open") ? closeDrawer() : openDrawer()));
scrim.addEventListener("click", closeDrawer);
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && app.classList.contains("drawer-open")) {
    closeDrawer();
    menu.focus();
  }
});

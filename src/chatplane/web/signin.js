// Signing in with an API key, and the account line in the sidebar. A local development server needs no key: the
// page only asks for one when the API answers 401.

import { Api } from "./api.js";

const $ = (id) => document.getElementById(id);

export class SignIn {
  /** `onSignedIn(key)`: the key was accepted by the server. */
  constructor({ onSignedIn }) {
    this.form = $("signin-form");
    this.key = $("signin-key");
    this.notice = $("signin-notice");
    this.error = $("signin-error");
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.submit(onSignedIn);
    });
  }

  /** Prepare the form; `signedOut`: say that the key in use was just refused. */
  reset(signedOut) {
    this.notice.hidden = !signedOut;
    this.error.hidden = true;
  }

  focus() {
    this.key.focus();
  }

  async submit(onSignedIn) {
    const key = this.key.value.trim();
    if (!key) return;
    const button = this.form.querySelector("button[type=submit]");
    button.disabled = true;
    this.error.hidden = true;
    try {
      await new Api({ key }).get("/v1/threads?limit=1");
    } catch (err) {
      this.error.textContent =
        err.status === 401 ? "That key was refused. Check it and try again." : `${err.message} (${err.code})`;
      this.error.hidden = false;
      this.key.select();
      return;
    } finally {
      button.disabled = false;
    }
    this.key.value = "";
    this.notice.hidden = true;
    await onSignedIn(key);
  }
}

/** The sidebar's account line: who the page talks as, and Sign out when there is a key to forget. */
export function showAccount(key) {
  const who = $("who");
  if (!key) who.textContent = "Local server, no key needed";
  else if (key.startsWith("cp_")) who.textContent = `Signed in with key ${key.split("_")[1]}`;
  else who.textContent = "Signed in with a token";
  $("sign-out").hidden = !key;
}

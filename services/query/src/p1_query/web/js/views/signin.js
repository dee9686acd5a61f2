// Sign-in: the read token goes once to POST /v1/session, which answers with an HttpOnly cookie; the
// token is not kept anywhere by the page (not in storage, not in the URL).

import { signIn } from "../api.js";
import { errorLine, fill, h } from "../dom.js";

export function render(main, { onSignedIn }) {
  const input = h("input", { id: "token", name: "token", type: "password", autocomplete: "current-password", required: true, spellcheck: "false" });
  const status = h("div", { "aria-live": "polite" });
  const button = h("button", { type: "submit" }, "Sign in");
  const form = h("form", {
    class: "card signin",
    onsubmit: async (e) => {
      e.preventDefault();
      button.disabled = true;
      fill(status);
      try {
        await signIn(input.value.trim());
        input.value = "";
        onSignedIn();
      } catch (error) {
        fill(status, errorLine(error));
        button.disabled = false;
        input.focus();
      }
    },
  },
  h("h1", {}, "Sign in"),
  h("p", { class: "muted" }, "Paste a read token. It is sent once, to this server only; the page then keeps a session cookie, not the token."),
  h("label", { for: "token" }, "Read token"),
  input,
  button,
  status);
  fill(main, form);
  input.focus();
  return () => {};
}

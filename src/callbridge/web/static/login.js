// The login page: check the token against the records API, keep it in this tab.
import { setToken, showError } from "./common.js";

const form = document.getElementById("login-form");
const input = document.getElementById("token");
const error = document.getElementById("login-error");

// Only same-site paths: the `next` parameter must not send the token's holder elsewhere.
// The server has vetted it (web/routes.py `safe_next`) into data-next; the same rules
// again here: one leading "/", no backslash, no control character or whitespace (browsers
// drop tabs and read "\" as "/": "/\t/evil.example" and "/\evil.example" are
// "//evil.example"), also once percent-decoded, and the same origin when resolved.
const UNSAFE = /[\\\s\u0000-\u001f\u007f-\u009f]/;

function plainPath(path) {
  return path.startsWith("/") && !path.startsWith("//") && !UNSAFE.test(path);
}

function nextPage() {
  const next = form.dataset.next || "/console";
  let decoded;
  try {
    decoded = decodeURIComponent(next);
  } catch {
    return "/console";
  }
  if (!plainPath(next) || !plainPath(decoded)) return "/console";
  return new URL(next, location.origin).origin === location.origin ? next : "/console";
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  showError(error, "");
  const value = input.value.trim();
  let res;
  try {
    res = await fetch("/api/calls?limit=1", { headers: { Authorization: "Bearer " + value } });
  } catch (err) {
    showError(error, "The service did not answer: " + err.message);
    return;
  }
  if (res.ok) {
    setToken(value);
    location.assign(nextPage());
    return;
  }
  let detail = "";
  try {
    detail = (await res.json()).detail || "";
  } catch {
    // not JSON
  }
  if (res.status === 401) showError(error, "That token is not right.");
  else showError(error, detail || `The service answered HTTP ${res.status}.`);
});

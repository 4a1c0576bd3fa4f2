// The login page: check the token against the records API, keep it in this tab.
import { setToken, showError } from "./common.js";

const form = document.getElementById("login-form");
const input = document.getElementById("token");
const error = document.getElementById("login-error");

// Only same-site paths: the `next` parameter must not send the token's holder elsewhere.
function nextPage() {
  const next = new URLSearchParams(location.search).get("next") || "/console";
  return next.startsWith("/") && !next.startsWith("//") ? next : "/console";
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

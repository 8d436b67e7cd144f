// The open job is in the URL: `?job=ID` on whatever page lies under the popup
// (#/scheduling/history?job=…, #/connectors/…?job=…). A reload keeps the popup, a
// shared link opens it, and closing it gives the page its URL back.

// Marks the history entries this page load pushed: those are left with Back.
const LOAD = `${Date.now()}-${Math.random()}`;

// The page's own hash (without `job`) and the job in it, if any.
export function jobInHash(hash) {
  const [path, search = ""] = hash.replace(/^#/, "").split("?");
  const q = new URLSearchParams(search);
  const job = q.get("job");
  q.delete("job");
  const rest = q.toString();
  return { page: rest ? `${path}?${rest}` : path, job };
}

// A new history entry, so that Back closes the popup.
export function showJobInUrl(jobId) {
  const { page, job } = jobInHash(location.hash);
  if (job === jobId) return;
  const q = new URLSearchParams(page.split("?")[1] || "");
  q.set("job", jobId);
  history.pushState({ jobPopup: LOAD }, "", `#${page.split("?")[0]}?${q}`);
}

// When the popup closes. A link followed from it, or Back, has already changed the URL.
export function leaveJobUrl(jobId) {
  const { page, job } = jobInHash(location.hash);
  if (job !== jobId) return;
  if (history.state?.jobPopup === LOAD) history.back();
  else history.replaceState(null, "", `#${page}`);
}

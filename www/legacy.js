// Builds the <img> an old OCF-daemon page would have embedded, from this page's query.
(function () {
  const params = new URLSearchParams(location.search);
  const daemon = params.get("daemon") ?? "http://localhost:27001";
  const server = new URL(params.get("url") ?? "/rt/test", location.href).href;
  const query = new URLSearchParams({ url: server });
  const session = params.get("sessionId");
  if (session) query.set("sessionId", session);
  const img = document.createElement("img");
  img.id = "legacy-img";
  img.width = 16;
  img.height = 16;
  img.alt = "card update status";
  const status = document.getElementById("legacy-status");
  img.addEventListener("load", () => {
    status.textContent = "The daemon answered (green: passed, red: failed).";
    status.dataset.state = "loaded";
  });
  img.addEventListener("error", () => {
    status.textContent = "No answer from the daemon: is card-relay --daemon running?";
    status.dataset.state = "error";
  });
  img.src = `${daemon}/1296065.png?${query}`;
  document.getElementById("legacy-image").append(img);
})();

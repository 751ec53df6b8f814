/**
 * The API reference page: Swagger UI (from the pinned swagger-ui-dist package, served by this Worker as
 * static assets under /docs/vendor, so it works offline) rendering /openapi.json, with "Try it out"
 * against this origin and bearer auth under "Authorize". No inline script: the page's CSP allows only
 * this origin's scripts.
 */
export function renderDocs(title: string): string {
  const esc = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} · API reference</title><link rel="stylesheet" href="/docs/vendor/swagger-ui.css"></head>
<body><noscript>The API reference needs JavaScript; the machine-readable description is at <a href="/openapi.json">/openapi.json</a>.</noscript>
<div id="swagger"></div><script src="/docs/vendor/swagger-ui-bundle.js"></script><script src="/docs/init.js"></script></body></html>`;
}

// The API reference: Swagger UI rendering the service's own /openapi.json, with "Try it out" against
// this origin and the bearer token entered under "Authorize" (kept in memory only).
window.addEventListener("load", () => {
  window.ui = window.SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger",
    deepLinking: true,
    tryItOutEnabled: true,
    persistAuthorization: false,
    displayRequestDuration: true,
    defaultModelsExpandDepth: 0,
  });
});

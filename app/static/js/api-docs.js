// Starts Swagger UI on the API page. A file, not an inline script: the CSP allows only 'self'.
window.addEventListener("DOMContentLoaded", () => {
  window.SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    // Requests made from the page send the session's CSRF token, like htmx does.
    requestInterceptor: (request) => {
      const token = document.getElementById("swagger-ui").dataset.csrfToken;
      if (token) {
        request.headers["X-CSRF-Token"] = token;
      }
      return request;
    },
  });
});

"""The API reference page at /docs: Swagger UI from the swagger-ui-py package's own assets,
served by the gateway (no CDN), reading /openapi.json."""

from __future__ import annotations

import os


def static_dir() -> str:
    import swagger_ui

    return os.path.join(os.path.dirname(swagger_ui.__file__), "static")


PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Givance API</title>
  <link rel="stylesheet" href="/docs/static/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/static/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true,
                                 defaultModelsExpandDepth: 0});
  </script>
</body>
</html>
"""

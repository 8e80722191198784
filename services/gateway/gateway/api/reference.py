"""GET /openapi.json (the contract, from openapi.yaml beside this package) and GET /docs (a page for
people: Swagger UI, whose files come from the flask-swagger-ui package, so it works offline)."""

import functools
import json
from pathlib import Path

import flask_swagger_ui
import yaml
from flask import Blueprint, Response, abort, send_from_directory

SPEC = Path(__file__).resolve().parents[1] / "openapi.yaml"
SWAGGER_UI = Path(flask_swagger_ui.__file__).resolve().parent / "dist"
ASSETS = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png", "favicon-16x16.png"})
# The page fetches nothing from anywhere but this origin; the browser enforces it.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self' 'unsafe-inline'; "
                           "style-src 'self' 'unsafe-inline'; img-src 'self' data:")

# Relative URLs, so that the page also works behind a proxy that serves the API under a prefix.
PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>mp3converter API</title>
  <link rel="stylesheet" href="docs/swagger-ui.css">
  <link rel="icon" type="image/png" href="docs/favicon-32x32.png" sizes="32x32">
  <link rel="icon" type="image/png" href="docs/favicon-16x16.png" sizes="16x16">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="docs/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      validatorUrl: null,
      persistAuthorization: false,
    });
  </script>
</body>
</html>
"""

blueprint = Blueprint("reference", __name__)


@functools.cache
def spec_json() -> str:
    """The OpenAPI document as JSON, in the order it is written (the reference page shows it so)."""
    return json.dumps(yaml.safe_load(SPEC.read_text(encoding="utf-8")), ensure_ascii=False)


def spec() -> dict:
    """The OpenAPI document, as JSON sees it (YAML's quirks cannot leak into it)."""
    return json.loads(spec_json())


@blueprint.get("/openapi.json")
def openapi():
    return Response(spec_json(), mimetype="application/json")


@blueprint.get("/docs")
def docs():
    return Response(PAGE, mimetype="text/html", headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY})


@blueprint.get("/docs/<asset>")
def docs_asset(asset):
    if asset not in ASSETS:
        abort(404)
    return send_from_directory(SWAGGER_UI, asset, max_age=3600)

"""GET /: the web page, and GET /static/<asset>: its files (gateway/static, served as they are: no
build step, no CDN), with the headers that keep the page to itself."""

from pathlib import Path

from flask import Blueprint, abort, send_from_directory

STATIC = Path(__file__).resolve().parents[1] / "static"
ASSETS = frozenset({"app.js", "app.css", "favicon.svg"})
# Scripts, styles and calls from this origin only; no inline code, no framing, no form posts away.
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                           "img-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'")

blueprint = Blueprint("page", __name__)


@blueprint.get("/")
def page():
    response = send_from_directory(STATIC, "index.html")
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@blueprint.get("/static/<asset>")
def page_asset(asset):
    if asset not in ASSETS:
        abort(404)
    return send_from_directory(STATIC, asset)


@blueprint.after_app_request
def no_sniffing(response):
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response

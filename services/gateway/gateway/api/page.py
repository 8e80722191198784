"""GET /: the web page (static files in gateway/static, served as they are: no build step, no CDN),
and the headers that keep it to itself."""

from flask import Blueprint, current_app, send_from_directory

blueprint = Blueprint("page", __name__)

# Scripts, styles and calls from this origin only; no inline code, no framing, no form posts away.
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                           "img-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'")


@blueprint.get("/")
def page():
    response = send_from_directory(current_app.static_folder, "index.html")
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@blueprint.after_app_request
def no_sniffing(response):
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response

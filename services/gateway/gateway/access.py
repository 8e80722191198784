"""Who is calling: a route wrapped in `login_required` runs only for a valid token, with `g.owner` set to
the caller's account id (the token's `uid`: an address can be given to a new account, an id never is)
and `g.email` to its address."""

import functools

from flask import g

from common.http import bearer_token, error_response
from gateway.context import gateway


def login_required(view):
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        token = bearer_token()
        claims = gateway().auth.validate(token) if token else None
        if claims is None:
            return error_response(401, "unauthorized",
                                  "Send 'Authorization: Bearer <token>'; get a token from POST /login.")
        g.owner, g.email = claims["uid"], claims["sub"]
        gateway().legacy_jobs.adopt(claims)
        return view(*args, **kwargs)

    return wrapper

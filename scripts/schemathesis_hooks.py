"""Schemathesis checks of our own for `make test-api` (scripts/schemathesis_run.py).

Loaded through SCHEMATHESIS_HOOKS. The API's promise (README, "The HTTP API"): every
4xx answer is JSON naming what is wrong (`error`) and where (`field`: a JSON path in
the body, or the parameter or header at fault), so a client can fix its request.
"""

import json

import schemathesis


@schemathesis.check
def four_xx_names_the_field(ctx, response, case):
    """A 4xx answer is a JSON object with a non-empty `error` and `field`."""
    if not 400 <= response.status_code < 500:
        return None
    try:
        body = json.loads(response.content)
    except ValueError as exc:
        raise AssertionError(
            f"{response.status_code} answer is not JSON ({exc}): {response.content[:200]!r}"
        ) from None
    if not isinstance(body, dict):
        raise AssertionError(f"{response.status_code} answer is not a JSON object: {body!r}")
    for key in ("error", "field"):
        value = body.get(key)
        if not isinstance(value, str) or not value.strip():
            raise AssertionError(
                f"{response.status_code} answer does not name the {key}: {json.dumps(body)[:300]}"
            )
    return True

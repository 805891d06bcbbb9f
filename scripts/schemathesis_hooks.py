"""Schemathesis hooks for the Partners REST gateway.

1. OpenAPI cannot say "this body field must equal that path parameter". The gateway requires the
   partner id inside a click event (`data.relationships.partner[.data].id`) and a PATCH body's
   `data.id` to equal the `{id}` of the path, so every generated case gets those ids set to the
   path id just before it is sent. Nothing else in a case is changed.
2. `DELETE /api/v1/partners/{id}/connect` disconnects the user; it does not delete a resource, and
   `PATCH` on the same path connects again, by design (the seed API). The "deleted resource still
   available" check (ST301) is dropped for that path only; it still applies to every other path.
3. OpenAPI cannot say "at least one of `ids` and `external_ids`, at most 100 keys in both" on
   `GET /api/v1/partners/batch`: each parameter is optional and limited alone. The "schema-valid
   request rejected" check (ST202) is dropped for a batch request that breaks that joint rule only.
4. A failed precondition depends on state, not on the request: restoring a partner whose external
   id another partner took is FAILED_PRECONDITION, which the design maps to 400 (grpc-gateway's
   table). ST202 reads any 400 as "schema-valid request rejected"; it is dropped for answers whose
   error code is that precondition's reason (`EXTERNAL_ID_TAKEN` from `/restore`) only.
5. OpenAPI cannot say "`filter[preferred]` needs `business_uuid`" on `GET /api/v1/partners/export`;
   ST202 is dropped for an export answered with that violation only. And a body over the
   documented 64 KiB limit is rejected with 413 (`POST /api/v1/partners/batch_update` with
   hundreds of items can be schema-valid and still too large): ST201 counts that as not rejected,
   so it is dropped for 413 answers. Nor can it say "each item names another partner" (ids are
   objects' members, beyond `uniqueItems`): ST202 is dropped for a batch update whose only
   errors are repeated ids.
6. Two values of the webhook routes cannot be generated from a schema: a page token is opaque
   (only the server makes valid ones), and an endpoint URL is valid when it names a public host
   (DNS and address rules no pattern can state). "Schema-valid request rejected" (ST202) is
   dropped for a webhook route when every error of the 400 names `page_token` or the `url`
   attribute; every other rejection still counts.
6. The click routes: OpenAPI cannot state the 64 KiB body limit (a batch of many events is a
   schema-valid 413, and a 413 is not among the rejections ST201 expects), a range's joint rules
   (`since` before `until`, at most so many days per bucket, years 1970 to 9999), which IANA zones
   Postgres knows, or a valid page token. ST201 and ST202 are dropped for a 413 of
   `POST /api/v1/partner_click_events/batch`, and ST202 for a click read's 400 whose errors all
   name `since`, `until`, `time_zone` or `page_token`; every other failure still counts.
7. The three partner lists take a `page_token` only the server makes (signed, bound to the
   query), and not together with `page`. ST202 is dropped for a list's 400 whose errors all name
   `page_token`, or `page` for being given with one; every other rejection still counts.
"""

import schemathesis


def _align_ids(body, method, path_id):
    if path_id is None or not isinstance(body, dict):
        return
    data = body.get("data")
    if not isinstance(data, dict):
        return
    if method == "PATCH" and "id" in data:
        data["id"] = str(path_id)
    relationships = data.get("relationships")
    if isinstance(relationships, dict):
        partner = relationships.get("partner")
        if isinstance(partner, dict):
            target = partner.get("data") if isinstance(partner.get("data"), dict) else partner
            if "id" in target:
                target["id"] = str(path_id)


@schemathesis.hook
def before_call(context, case, kwargs):
    path_id = (case.path_parameters or {}).get("id")
    method = case.method.upper()
    _align_ids(case.body, method, path_id)
    if isinstance(kwargs.get("json"), dict):
        _align_ids(kwargs["json"], method, path_id)


def _batch_keys(case):
    query = case.query or {}
    keys = 0
    for name in ("ids", "external_ids"):
        value = query.get(name)
        if isinstance(value, str) and value:
            keys += len(value.split(","))
    return keys


UNGENERATABLE = ({"parameter": "page_token"}, {"pointer": "/data/attributes/url"})
CLICK_JOINT_RULES = (
    {"parameter": "since"},
    {"parameter": "until"},
    {"parameter": "time_zone"},
    {"parameter": "page_token"},
)


def _click_joint_rule(case, failure, response):
    code = getattr(failure, "code", "")
    if response is None:
        return False
    if case.path.endswith("/partner_click_events/batch"):
        return code in ("ST201", "ST202") and response.status_code == 413
    if code != "ST202":
        return False
    if "click" not in case.path:
        return False
    try:
        errors = response.json()["errors"]
    except Exception:  # noqa: BLE001 - not an error document: the failure stands
        return False
    return bool(errors) and all(e.get("source") in CLICK_JOINT_RULES for e in errors)


def _only_details(response, texts):
    """Whether `response` is an error document each of whose errors' detail holds one of `texts`."""
    try:
        errors = response.json()["errors"]
    except Exception:  # noqa: BLE001 - not an error document
        return False
    return bool(errors) and all(any(t in e.get("detail", "") for t in texts) for e in errors)


def _only_sources(response, sources):
    """Whether `response` is an error document each of whose errors has one of `sources`."""
    try:
        errors = response.json()["errors"]
    except Exception:  # noqa: BLE001 - not an error document
        return False
    return bool(errors) and all(e.get("source") in sources for e in errors)


LIST_PATHS = ("/api/v1/partners", "/api/v1/partners/available", "/api/v1/partners/wholesalers")


def _list_token(case, failure, response):
    if getattr(failure, "code", "") != "ST202" or case.path not in LIST_PATHS:
        return False
    try:
        errors = response.json()["errors"]
    except Exception:  # noqa: BLE001 - not an error document: the failure stands
        return False
    token = {"parameter": "page_token"}
    with_page = {"parameter": "page"}
    return bool(errors) and all(
        e.get("source") == token
        or (e.get("source") == with_page and "page_token" in e.get("detail", ""))
        for e in errors
    )


def _only_ungeneratable(case, failure, response):
    if getattr(failure, "code", "") != "ST202" or "/webhook_endpoints" not in case.path:
        return False
    try:
        errors = response.json()["errors"]
    except Exception:  # noqa: BLE001 - not an error document: the failure stands
        return False
    return bool(errors) and all(e.get("source") in UNGENERATABLE for e in errors)


@schemathesis.hook
def filter_failure(context, failure, case, response):
    code = getattr(failure, "code", "")
    reconnect = code == "ST301" and case.path.endswith("/connect")
    batch_rule = (
        code == "ST202"
        and case.path.endswith("/partners/batch")
        and not 1 <= _batch_keys(case) <= 100
    )
    taken = (
        code == "ST202"
        and case.path.endswith("/restore")
        and response is not None
        and '"code":"EXTERNAL_ID_TAKEN"' in (response.text or "")
    )
    ungeneratable = _only_ungeneratable(case, failure, response)
    preferred_alone = (
        code == "ST202"
        and case.path.endswith("/partners/export")
        and _only_sources(response, ({"parameter": "filter[preferred]"},))
    )
    too_large = code == "ST201" and response is not None and response.status_code == 413
    repeated = (
        code == "ST202"
        and case.path.endswith("/partners/batch_update")
        and _only_details(response, ("names the same partner as", "more invalid items"))
    )
    clicks = _click_joint_rule(case, failure, response)
    list_token = _list_token(case, failure, response)
    return not (
        reconnect or batch_rule or taken or ungeneratable or preferred_alone or too_large or repeated
        or clicks or list_token
    )

"""A local HTTP server that speaks Stripe's wire format for the calls the platform's charger
makes (form-encoded requests, JSON objects and errors as Stripe answers them), so the official
`stripe` library is driven for real against it (api_base). Its card per organization decides how
a charge ends, like Stripe's test payment methods: pm_card_visa succeeds, pm_card_chargeDeclined
is declined (402 card_error), pm_processing stays processing. A SetupIntent confirmed with one of
them (`confirm`, what Stripe.js does in the browser) saves a new PaymentMethod (pm_…) cloned from
it, with that test card's brand, last four digits and expiry."""

from __future__ import annotations

import copy
import json
import re
import time
import uuid
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from chassis.http import HttpHost

KEY = "sk_test_platform0000000000000000"
DECLINED, VISA, PROCESSING = "pm_card_chargeDeclined", "pm_card_visa", "pm_processing"
MASTERCARD = "pm_card_mastercard"
TEST_CARDS = {VISA: ("visa", "4242"), MASTERCARD: ("mastercard", "4444"), DECLINED: ("visa", "0002"),
              PROCESSING: ("visa", "3220")}


def _form(body: bytes) -> dict:
    """Stripe's form encoding (metadata[k]=v, expand[0]=x) -> a nested dict."""
    out: dict = {}
    for key, value in parse_qsl(body.decode(), keep_blank_values=True):
        m = re.match(r"^(\w+)\[(\w+)\]$", key)
        if m:
            out.setdefault(m.group(1), {})[m.group(2)] = value
        else:
            out[key] = value
    return out


class FakeStripe:
    def __init__(self) -> None:
        self.cards: dict[str, str] = {}  # organization id -> its default payment method
        self.customers: dict[str, dict] = {}
        self.intents: dict[str, dict] = {}
        self.setup_intents: dict[str, dict] = {}
        self.methods: dict[str, dict] = {}  # saved PaymentMethods by id
        self.detached: set[str] = set()
        self.requests: list[dict] = []
        self._idempotent: dict[str, tuple[int, dict]] = {}
        self.host = HttpHost("fake-stripe", Starlette(routes=[
            Route("/v1/customers/search", self._search, methods=["GET"]),
            Route("/v1/customers", self._create_customer, methods=["POST"]),
            Route("/v1/payment_intents", self._create_intent, methods=["POST"]),
            Route("/v1/setup_intents", self._create_setup_intent, methods=["POST"]),
            Route("/v1/payment_methods/{pm}", self._payment_method, methods=["GET"]),
            Route("/v1/payment_methods/{pm}/detach", self._detach, methods=["POST"]),
        ]), port=0)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.host.bound_port}"

    def event(self, payment_id: str, kind: str = "payment_intent.succeeded") -> dict:
        """The event Stripe sends the platform's webhook about a payment intent."""
        obj = copy.deepcopy(self.intents[payment_id])
        if kind == "payment_intent.succeeded":
            obj["status"] = "succeeded"
        elif kind == "payment_intent.payment_failed":
            obj |= {"status": "requires_payment_method",
                    "last_payment_error": {"code": "card_declined", "message": "Your card was declined."}}
        return {"id": f"evt_{uuid.uuid4().hex[:24]}", "object": "event", "type": kind, "created": int(time.time()),
                "livemode": False, "data": {"object": obj}}

    def confirm(self, setup_intent_id: str, test_card: str = VISA, expand: bool = False) -> dict:
        """Stripe.js confirming the SetupIntent with a test card: the saved PaymentMethod, and the
        setup_intent.succeeded event Stripe sends the platform's webhook (its payment_method an id,
        or the object when `expand`)."""
        seti = self.setup_intents[setup_intent_id]
        brand, last4 = TEST_CARDS[test_card]
        pm = {"id": f"pm_{uuid.uuid4().hex[:24]}", "object": "payment_method", "type": "card",
              "customer": seti["customer"], "created": int(time.time()), "livemode": False, "test_card": test_card,
              "card": {"brand": brand, "last4": last4, "exp_month": 12, "exp_year": 2034, "funding": "credit"},
              "billing_details": {"name": None}, "metadata": {}}
        self.methods[pm["id"]] = pm
        seti |= {"status": "succeeded", "payment_method": pm["id"]}
        obj = copy.deepcopy(seti) | ({"payment_method": copy.deepcopy(pm)} if expand else {})
        return {"id": f"evt_{uuid.uuid4().hex[:24]}", "object": "event", "type": "setup_intent.succeeded",
                "created": int(time.time()), "livemode": False, "data": {"object": obj}}

    async def _create_setup_intent(self, request: Request) -> Response:
        if (req := await self._authorized(request)) is None:
            return self._unauthorized()

        def make():
            p = req["params"]
            seti_id = f"seti_{uuid.uuid4().hex[:24]}"
            seti = {"id": seti_id, "object": "setup_intent", "client_secret": f"{seti_id}_secret_{uuid.uuid4().hex}",
                    "customer": p.get("customer"), "usage": p.get("usage"), "status": "requires_payment_method",
                    "payment_method": None, "description": p.get("description"), "metadata": p.get("metadata") or {},
                    "livemode": False, "created": int(time.time())}
            if seti["customer"] not in self.customers:
                return 400, {"error": {"type": "invalid_request_error", "code": "resource_missing",
                                       "param": "customer", "message": f"No such customer: '{seti['customer']}'"}}
            self.setup_intents[seti_id] = seti
            return 200, seti

        return self._replay(req["idempotency_key"], make)

    async def _payment_method(self, request: Request) -> Response:
        if await self._authorized(request) is None:
            return self._unauthorized()
        pm = self.methods.get(request.path_params["pm"])
        if pm is None:
            return JSONResponse({"error": {"type": "invalid_request_error", "code": "resource_missing",
                                           "message": "No such PaymentMethod"}}, status_code=404)
        return JSONResponse({k: v for k, v in pm.items() if k != "test_card"})

    async def _detach(self, request: Request) -> Response:
        if await self._authorized(request) is None:
            return self._unauthorized()
        pm = self.methods.get(request.path_params["pm"])
        if pm is None or pm["customer"] is None:
            return JSONResponse({"error": {"type": "invalid_request_error", "code": "payment_method_unexpected_state",
                                           "message": "The payment method is not attached to a customer."}},
                                status_code=400)
        pm["customer"] = None
        self.detached.add(pm["id"])
        return JSONResponse({k: v for k, v in pm.items() if k != "test_card"})

    async def _authorized(self, request: Request) -> dict | None:
        if request.headers.get("authorization") != f"Bearer {KEY}":
            return None
        body = await request.body()
        self.requests.append({"method": request.method, "path": request.url.path, "params": _form(body),
                              "query": dict(request.query_params),
                              "idempotency_key": request.headers.get("idempotency-key")})
        return self.requests[-1]

    def _unauthorized(self) -> Response:
        return JSONResponse({"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}},
                            status_code=401)

    def _replay(self, key: str | None, make) -> Response:
        if key is None:
            status, body = make()
        else:
            if key not in self._idempotent:
                self._idempotent[key] = make()
            status, body = self._idempotent[key]
        return Response(json.dumps(body), status_code=status, media_type="application/json",
                        headers={"request-id": f"req_{uuid.uuid4().hex[:14]}"})

    async def _search(self, request: Request) -> Response:
        if (req := await self._authorized(request)) is None:
            return self._unauthorized()
        m = re.match(r"^metadata\['organization_id'\]:'([0-9a-f-]+)'$", req["query"].get("query", ""))
        data = [c for c in self.customers.values() if m and c["metadata"].get("organization_id") == m.group(1)]
        return JSONResponse({"object": "search_result", "url": "/v1/customers/search", "has_more": False,
                             "next_page": None, "data": data[:1]})

    async def _create_customer(self, request: Request) -> Response:
        if (req := await self._authorized(request)) is None:
            return self._unauthorized()

        def make():
            p = req["params"]
            org = (p.get("metadata") or {}).get("organization_id", "")
            c = {"id": f"cus_{uuid.uuid4().hex[:14]}", "object": "customer", "description": p.get("description"),
                 "metadata": p.get("metadata") or {}, "created": int(time.time()), "livemode": False,
                 "invoice_settings": {"default_payment_method": self.cards.get(org)}}
            self.customers[c["id"]] = c
            return 200, c

        return self._replay(req["idempotency_key"], make)

    async def _create_intent(self, request: Request) -> Response:
        if (req := await self._authorized(request)) is None:
            return self._unauthorized()

        def make():
            p = req["params"]
            pm = p.get("payment_method")
            saved = self.methods.get(pm)
            if saved is not None and saved["customer"] != p.get("customer"):
                return 400, {"error": {"type": "invalid_request_error", "code": "resource_missing",
                                       "message": "The payment method does not belong to the customer."}}
            pm = saved["test_card"] if saved is not None else pm  # a saved card acts as its test card
            status = {DECLINED: "requires_payment_method", PROCESSING: "processing"}.get(pm, "succeeded")
            pi = {"id": f"pi_{uuid.uuid4().hex[:24]}", "object": "payment_intent", "amount": int(p["amount"]),
                  "amount_received": int(p["amount"]) if status == "succeeded" else 0, "currency": p["currency"],
                  "customer": p.get("customer"), "payment_method": p.get("payment_method"), "status": status,
                  "description": p.get("description"), "metadata": p.get("metadata") or {}, "livemode": False,
                  "created": int(time.time())}
            self.intents[pi["id"]] = pi
            if pm == DECLINED:
                return 402, {"error": {"type": "card_error", "code": "card_declined", "decline_code":
                                       "generic_decline", "message": "Your card was declined.",
                                       "payment_intent": pi}}
            return 200, pi

        return self._replay(req["idempotency_key"], make)

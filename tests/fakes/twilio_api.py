"""A fake Twilio REST API: the Calls resource update (`calls(sid).update(...)`) the sidecar uses to hang up and
transfer, and the IncomingPhoneNumbers list the platform checks a number against before assigning it. Checks HTTP
Basic auth like Twilio, records every update and look-up, answers with Twilio's JSON shapes (a list page: paging
fields and an `incoming_phone_numbers` array of the resource's fields).

    fake = FakeTwilioApi(account_sid, auth_token, numbers=["+14155550100"])
    with serve(fake.app) as url: ...      # TWILIO_API_BASE = url
    fake.updates -> [{"call_sid": "CA..", "Status": "completed"}, ...]
    fake.lookups -> [{"PhoneNumber": "+14155550100"}, ...]
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
import time
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


class FakeTwilioApi:
    def __init__(self, account_sid: str, auth_token: str, numbers: list[str] | tuple[str, ...] = ()):
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.numbers = list(numbers)  # the account's incoming phone numbers, E.164
        self.updates: list[dict[str, str]] = []
        self.updated_at: list[float] = []  # perf_counter() of each update
        self.lookups: list[dict[str, str]] = []
        self.changed = threading.Event()
        self.app = Starlette(
            routes=[
                Route("/2010-04-01/Accounts/{account}/Calls/{call}.json", self._update, methods=["POST"]),
                Route(
                    "/2010-04-01/Accounts/{account}/IncomingPhoneNumbers.json", self._incoming_numbers, methods=["GET"]
                ),
            ]
        )

    def _unauthorised(self, request: Request) -> JSONResponse | None:
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if request.headers.get("authorization") != expected or request.path_params["account"] != self.account_sid:
            return JSONResponse(
                {
                    "code": 20003,
                    "message": "Authenticate",
                    "more_info": "https://www.twilio.com/docs/errors/20003",
                    "status": 401,
                },
                status_code=401,
            )
        return None

    async def _incoming_numbers(self, request: Request) -> JSONResponse:
        """GET .../IncomingPhoneNumbers.json: PhoneNumber filters by partial number ('*' is any digit); PageSize, Page."""
        if refused := self._unauthorised(request):
            return refused
        query = dict(request.query_params)
        self.lookups.append(query)
        wanted = query.get("PhoneNumber", "")
        pattern = re.compile("".join(r"\d" if c == "*" else re.escape(c) for c in wanted))
        matches = [n for n in self.numbers if pattern.search(n)]
        page_size = max(1, min(1000, int(query.get("PageSize", "50"))))
        page = max(0, int(query.get("Page", "0")))
        chunk = matches[page * page_size : (page + 1) * page_size]
        base = f"/2010-04-01/Accounts/{self.account_sid}/IncomingPhoneNumbers.json"

        def uri(n: int) -> str:
            params = {k: v for k, v in {"PhoneNumber": wanted, "PageSize": page_size, "Page": n}.items() if v != ""}
            return f"{base}?{urlencode(params)}"

        more = (page + 1) * page_size < len(matches)
        return JSONResponse(
            {
                "first_page_uri": uri(0),
                "end": page * page_size + max(0, len(chunk) - 1),
                "previous_page_uri": uri(page - 1) if page else None,
                "incoming_phone_numbers": [self._number_resource(n) for n in chunk],
                "uri": uri(page),
                "page_size": page_size,
                "start": page * page_size,
                "next_page_uri": uri(page + 1) if more else None,
                "page": page,
            }
        )

    def _number_resource(self, number: str) -> dict:
        """An IncomingPhoneNumber resource as Twilio returns it."""
        sid = "PN" + hashlib.sha256(number.encode()).hexdigest()[:32]
        national = number[2:] if number.startswith("+1") and len(number) == 12 else number
        friendly = f"({national[:3]}) {national[3:6]}-{national[6:]}" if national != number else number
        now = datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
        uri = f"/2010-04-01/Accounts/{self.account_sid}/IncomingPhoneNumbers/{sid}.json"
        return {
            "account_sid": self.account_sid,
            "address_requirements": "none",
            "address_sid": None,
            "api_version": "2010-04-01",
            "beta": False,
            "capabilities": {"voice": True, "sms": True, "mms": True, "fax": False},
            "date_created": now,
            "date_updated": now,
            "emergency_status": "Inactive",
            "emergency_address_sid": None,
            "emergency_address_status": "unregistered",
            "friendly_name": friendly,
            "identity_sid": None,
            "origin": "twilio",
            "phone_number": number,
            "sid": sid,
            "sms_application_sid": "",
            "sms_fallback_method": "POST",
            "sms_fallback_url": "",
            "sms_method": "POST",
            "sms_url": "",
            "status_callback": "",
            "status_callback_method": "POST",
            "trunk_sid": None,
            "uri": uri,
            "voice_application_sid": None,
            "voice_caller_id_lookup": False,
            "voice_fallback_method": "POST",
            "voice_fallback_url": None,
            "voice_method": "POST",
            "voice_url": "",
            "bundle_sid": None,
            "voice_receive_mode": "voice",
            "status": "in-use",
            "type": "local",
            "subresource_uris": {"assigned_add_ons": uri.removesuffix(".json") + "/AssignedAddOns.json"},
        }

    async def _update(self, request: Request) -> JSONResponse:
        if refused := self._unauthorised(request):
            return refused
        form = dict(parse_qsl((await request.body()).decode()))
        call_sid = request.path_params["call"].removesuffix(".json")
        self.updates.append({"call_sid": call_sid, **form})
        self.updated_at.append(time.perf_counter())
        self.changed.set()
        now = datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
        return JSONResponse(
            {
                "sid": call_sid,
                "account_sid": self.account_sid,
                "api_version": "2010-04-01",
                "direction": "inbound",
                "status": "completed" if form.get("Status") == "completed" else "in-progress",
                "from": "+15555550123",
                "to": "+15550100000",
                "date_created": now,
                "date_updated": now,
                "start_time": now,
                "end_time": now if form.get("Status") == "completed" else None,
                "duration": "0",
                "price": None,
                "price_unit": "USD",
                "answered_by": None,
                "caller_name": None,
                "forwarded_from": None,
                "group_sid": None,
                "parent_call_sid": None,
                "phone_number_sid": "PN" + "0" * 32,
                "queue_time": "0",
                "trunk_sid": None,
                "annotation": None,
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Calls/{call_sid}.json",
                "subresource_uris": {},
            }
        )

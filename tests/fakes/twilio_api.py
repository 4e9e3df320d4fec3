"""A fake Twilio REST API: the Calls resource update (`calls(sid).update(...)`) the sidecar uses to hang up and
transfer. Checks HTTP Basic auth like Twilio, records every update, answers with Twilio's Call JSON.

    fake = FakeTwilioApi(account_sid, auth_token)
    with serve(fake.app) as url: ...      # TWILIO_API_BASE = url
    fake.updates -> [{"call_sid": "CA..", "Status": "completed"}, ...]
"""

from __future__ import annotations

import base64
import threading
import time
from datetime import datetime, timezone
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


class FakeTwilioApi:
    def __init__(self, account_sid: str, auth_token: str):
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.updates: list[dict[str, str]] = []
        self.updated_at: list[float] = []  # perf_counter() of each update
        self.changed = threading.Event()
        self.app = Starlette(routes=[Route("/2010-04-01/Accounts/{account}/Calls/{call}.json", self._update, methods=["POST"])])

    async def _update(self, request: Request) -> JSONResponse:
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if request.headers.get("authorization") != expected or request.path_params["account"] != self.account_sid:
            return JSONResponse({"code": 20003, "message": "Authenticate", "more_info": "https://www.twilio.com/docs/errors/20003",
                                 "status": 401}, status_code=401)
        form = dict(parse_qsl((await request.body()).decode()))
        call_sid = request.path_params["call"].removesuffix(".json")
        self.updates.append({"call_sid": call_sid, **form})
        self.updated_at.append(time.perf_counter())
        self.changed.set()
        now = datetime.now(timezone.utc).strftime("%a, %d %b %Y %H:%M:%S +0000")
        return JSONResponse({
            "sid": call_sid, "account_sid": self.account_sid, "api_version": "2010-04-01", "direction": "inbound",
            "status": "completed" if form.get("Status") == "completed" else "in-progress",
            "from": "+15555550123", "to": "+15550100000", "date_created": now, "date_updated": now,
            "start_time": now, "end_time": now if form.get("Status") == "completed" else None, "duration": "0",
            "price": None, "price_unit": "USD", "answered_by": None, "caller_name": None, "forwarded_from": None,
            "group_sid": None, "parent_call_sid": None, "phone_number_sid": "PN" + "0" * 32, "queue_time": "0",
            "trunk_sid": None, "annotation": None,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Calls/{call_sid}.json", "subresource_uris": {},
        })

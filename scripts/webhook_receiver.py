"""A local webhook receiver for trying the webhooks out: prints each delivery and checks its
signature with the Standard Webhooks reference library.

    pip install standardwebhooks
    WEBHOOK_SECRET=whsec_... python3 scripts/webhook_receiver.py 9000

Answers 204 to a delivery whose signature verifies, 400 otherwise (the service then retries it).
"""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks.webhooks import Webhook

SECRET = os.environ["WEBHOOK_SECRET"]


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - the handler's method name
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            Webhook(SECRET).verify(body, headers)
            verdict = "signature OK"
            status = 204
        except Exception as error:  # noqa: BLE001 - any failure is a bad signature
            verdict = f"signature REJECTED: {error}"
            status = 400
        event = json.loads(body)
        print(headers["webhook-id"], event["type"], f"sequence {event['sequence']}:", verdict)
        print(json.dumps(event["data"], indent=2), flush=True)
        self.send_response(status)
        self.end_headers()

    def log_message(self, *_):
        pass


if __name__ == "__main__":
    HTTPServer(("127.0.0.1", int(sys.argv[1])), Receiver).serve_forever()

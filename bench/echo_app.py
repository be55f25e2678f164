"""The baseline for bench/serving.py: a bare ASGI app on uvicorn that parses the JSON body and
echoes it back (orjson). It is the ceiling for a Python HTTP server on this machine."""

import orjson


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    out = orjson.dumps(orjson.loads(body)) if body else b'{"status":"ok"}'
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(out)).encode())]})
    await send({"type": "http.response.body", "body": out})

"""Send one image to framepipe and print what is in it: protocol v1 with only pyzmq and msgpack.

    /usr/bin/python3 examples/python/infer_once.py IMAGE [tcp://127.0.0.1:5555]
"""
import sys

import msgpack
import zmq


def infer(image_bytes, endpoint="tcp://127.0.0.1:5555", timeout_ms=30000):
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    try:
        header = {"id": "example-1", "timeout_ms": timeout_ms}
        sock.send_multipart([msgpack.packb(header), image_bytes])
        # Never block forever: a REQ socket whose reply is lost would hang here.
        if not sock.poll(timeout_ms + 1000):
            raise TimeoutError(f"no reply from {endpoint} within {timeout_ms} ms")
        return msgpack.unpackb(sock.recv())
    finally:
        sock.close()


if __name__ == "__main__":
    path = sys.argv[1]
    endpoint = sys.argv[2] if len(sys.argv) > 2 else "tcp://127.0.0.1:5555"
    with open(path, "rb") as f:
        reply = infer(f.read(), endpoint)
    if not reply["ok"]:
        print(f"error {reply['error']['code']}: {reply['error']['message']}")
        sys.exit(1)
    print(f"{path}: {reply['width']}x{reply['height']}, {len(reply['detections'])} detection(s)")
    for d in reply["detections"]:
        what = repr(d["text"]) if "text" in d else d["label"]
        print(f"  {what} score={d['score']:.2f} box={[round(v) for v in d['box']]}")

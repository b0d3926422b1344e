"""An imagezmq-style sender talking to framepipe: the frames ImageSender.send_jpg sends, the JSON reply.

Written with pyzmq alone to show the framing; with imagezmq installed, ImageSender(connect_to=ENDPOINT)
.send_jpg(name, jpg) does exactly this and returns the same reply bytes.

    /usr/bin/python3 examples/python/imagezmq_sender.py IMAGE.jpg [tcp://127.0.0.1:5555]
"""
import json
import sys

import zmq

path = sys.argv[1]
endpoint = sys.argv[2] if len(sys.argv) > 2 else "tcp://127.0.0.1:5555"

sock = zmq.Context.instance().socket(zmq.REQ)
sock.setsockopt(zmq.LINGER, 0)
sock.connect(endpoint)
sock.send_json({"msg": "example-cam"}, zmq.SNDMORE)  # send_image adds "dtype" and "shape" and sends raw BGR
with open(path, "rb") as f:
    sock.send(f.read())
if not sock.poll(30000):
    sys.exit(f"no reply from {endpoint}")
reply = json.loads(sock.recv())
sock.close()
if not reply["ok"]:
    sys.exit(f"error {reply['error']['code']}: {reply['error']['message']}")
print(f"{reply['stream']}: {reply['width']}x{reply['height']}, {[d['label'] for d in reply['detections']]}")

"""Live camera through framepipe, boxes drawn, up to 4 frames in flight; q quits.

    PYTHONPATH=clients/python /usr/bin/python3 examples/python/camera_loop.py [tcp://127.0.0.1:5555] [camera index]
"""
import sys

import cv2

from framepipe import PipelinedClient, draw, infer_video

endpoint = sys.argv[1] if len(sys.argv) > 1 else "tcp://127.0.0.1:5555"
camera = int(sys.argv[2]) if len(sys.argv) > 2 else 0

with PipelinedClient(endpoint, window=4, timeout=5) as client:
    for frame, reply in infer_video(client, camera):
        cv2.imshow("framepipe", draw(frame, reply))
        if cv2.waitKey(1) & 0xFF == ord("q"):
            break
cv2.destroyAllWindows()

"""Every image of a folder, 8 in flight, printed in natural file order (frame2 before frame10).

    PYTHONPATH=clients/python /usr/bin/python3 examples/python/folder_pipelined.py FOLDER [tcp://127.0.0.1:5555]
"""
import sys

from framepipe import PipelinedClient, infer_folder

folder = sys.argv[1]
endpoint = sys.argv[2] if len(sys.argv) > 2 else "tcp://127.0.0.1:5555"

with PipelinedClient(endpoint, window=8, timeout=30) as client:
    for path, reply in infer_folder(client, folder):
        if reply["ok"]:
            found = [d.get("text", d["label"]) for d in reply["detections"]]
            print(f"{path.name}: {reply['width']}x{reply['height']} {found}")
        else:
            print(f"{path.name}: {reply['error']['code']} {reply['error']['message']}")

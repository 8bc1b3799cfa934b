"""rembg side of the removal benchmark (run in the bench venv, offline).

The u2netp session is created once (timed apart). For each photo: decode it (PIL, timed apart),
then time `rembg.remove(img, session=session, only_mask=True)` — the model's full-resolution
mask, the same product as thumbgen's `RemovalEngine::mask` — with wall time (perf_counter) and the
process's CPU time (user + sys from getrusage, which includes onnxruntime's threads). Masks are
saved as PNG (untimed) for the IoU. Prints one JSON object.

Needs U2NET_HOME pointing at a folder holding u2netp.onnx: with it rembg never touches the network.
"""

import argparse
import json
import os
import resource
import sys
import time


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--masks", required=True)
    ap.add_argument("photos", nargs="+")
    args = ap.parse_args()
    os.makedirs(args.masks, exist_ok=True)

    t0, c0 = time.perf_counter(), cpu()
    import onnxruntime
    import rembg
    from PIL import Image

    import_s, import_cpu = time.perf_counter() - t0, cpu() - c0
    t0, c0 = time.perf_counter(), cpu()
    session = rembg.new_session("u2netp")
    session_s, session_cpu = time.perf_counter() - t0, cpu() - c0
    options = session.inner_session.get_session_options()

    per_image = []
    for path in args.photos:
        t0, c0 = time.perf_counter(), cpu()
        img = Image.open(path)
        img.load()
        decode_s, decode_cpu = time.perf_counter() - t0, cpu() - c0
        t0, c0 = time.perf_counter(), cpu()
        mask = rembg.remove(img, session=session, only_mask=True)
        wall, used = time.perf_counter() - t0, cpu() - c0
        name = os.path.splitext(os.path.basename(path))[0]
        mask.save(os.path.join(args.masks, name + ".png"), compress_level=1)
        per_image.append(
            {"photo": name, "wall_s": wall, "cpu_s": used, "decode_s": decode_s, "decode_cpu_s": decode_cpu}
        )

    threads = len(os.listdir("/proc/self/task"))
    print(
        json.dumps(
            {
                "rembg": getattr(rembg, "__version__", "?"),
                "onnxruntime": onnxruntime.__version__,
                "providers": session.inner_session.get_providers(),
                "intra_op_num_threads": options.intra_op_num_threads,
                "inter_op_num_threads": options.inter_op_num_threads,
                "process_threads": threads,
                "import_s": import_s,
                "import_cpu_s": import_cpu,
                "session_s": session_s,
                "session_cpu_s": session_cpu,
                "images": per_image,
                "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            }
        )
    )


if __name__ == "__main__":
    sys.exit(main())

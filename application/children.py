"""The one entry point of eventfold's child processes: ``python -m eventfold.application.children``.

    python -m eventfold.application.children read FD POSITION LINE BATCH MAX_LINE SOURCE
    python -m eventfold.application.children prefetch BATCH MAX_LINE   (paths on stdin)
    python -m eventfold.application.children fold STORE BACKEND PROJECTION AFTER LAST

``read``: an ingest's reading process (``ingest/reading.py``): it reads the open
file ``FD`` from byte ``POSITION`` and writes framed batches on stdout, then an
end frame. ``prefetch``: an ingest's prefetching process (``ingest/prefetch.py``):
it reads the files listed (JSON) on stdin from their first byte, in order, and
writes each file's framed batches. ``fold``: a rebuild worker (``projecting/workers.py``): it folds
notifications ``AFTER+1..LAST``, writing ``{"folded": N}`` lines as it goes, then
``{"applied": N}`` and, on the next line, its state (the projection's
``dump_state``), each as one line of JSON.
Both report a failure as one line on stderr and a non-zero exit; the parent
process decides what it means. These are not commands for users.
"""

from __future__ import annotations

import json
import os
import sys

from eventfold.infra.gc_policy import use_batch_thresholds


def main(argv: list[str]) -> int:
    use_batch_thresholds()
    role, args = argv[0], argv[1:]
    try:
        if role == "read":
            from eventfold.application.ingest.reader_process import serve

            serve(args)
        elif role == "prefetch":
            from eventfold.application.ingest.prefetch import serve as prefetch

            prefetch(args)
        elif role == "fold":
            from eventfold.application.projecting.workers import fold_range

            store, backend, spec, after, last = args

            def folded(count: int) -> None:
                sys.stdout.write(json.dumps({"folded": count}) + "\n")
                sys.stdout.flush()

            state, applied = fold_range(store, backend, spec, int(after), int(last), folded)
            sys.stdout.write(json.dumps({"applied": applied}) + "\n")
            sys.stdout.flush()
            sys.stdout.buffer.write(state + b"\n")
        else:
            sys.stderr.write(f"unknown child role {role!r}\n")
            return 2
    except BrokenPipeError:  # the parent stopped reading: it is done or gone
        os._exit(0)
    except Exception as e:  # one short line for the parent to show
        sys.stderr.write(f"{type(e).__name__}: {str(e)[:1000]}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

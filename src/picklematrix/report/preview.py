"""``picklematrix preview`` and ``./nox -s preview``: the report's site served on 127.0.0.1 until Ctrl-C.

    picklematrix preview [--html DIR] [--port N] [--browser] [--results DIR] [--checkout DIR]

The site is what ``picklematrix report`` wrote (``--html``, default: the checkout's ``html/`` for its own results,
as the report chooses it). It is served from 127.0.0.1 only, on ``--port`` (default 0: a free port), and the
matrix page's URL is printed (and opened in the default browser with ``--browser``). Opening the files from disk
does not work: asv's pages load their data with requests a browser refuses for ``file://``.

Standard library only: ``./nox -s preview`` runs it in nox's own Python. Exit status: 0 stopped (Ctrl-C or
SIGTERM); 2 bad input (no site there: build it with the report first; the port is taken).
"""

from __future__ import annotations

import errno
import functools
import http.server
import signal
import sys
import threading
import webbrowser
from pathlib import Path

from picklematrix.record.asvconf import AsvConfigError, default_html_dir
from picklematrix.report.checkout import CheckoutError, default_results_dir, resolve_checkout

EXIT_OK, EXIT_BAD_INPUT = 0, 2
HOST = "127.0.0.1"
PAGE = "matrix.html"


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Static files, never cached (a report built again shows at once), without a log line per request."""

    def end_headers(self):
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def site_of(args) -> Path:
    """The site to serve: ``--html``, else where ``picklematrix report`` puts it for these results and checkout."""
    if args.html:
        return Path(args.html).resolve()
    checkout = resolve_checkout(args.checkout)
    results = Path(args.results) if args.results else default_results_dir(checkout)
    if checkout is not None:
        try:
            return default_html_dir(checkout, results)
        except AsvConfigError:
            pass
    return results.resolve().parent / "html"


def serve(site: Path, port: int = 0) -> http.server.ThreadingHTTPServer:
    """A server of ``site`` on 127.0.0.1:``port`` (0: a free one), not yet serving. Raises OSError (port taken)."""
    server = http.server.ThreadingHTTPServer((HOST, port), functools.partial(_Handler, directory=str(site)))
    server.daemon_threads = True
    return server


def run(args) -> int:
    """``picklematrix preview`` and ``./nox -s preview``: serve the site until Ctrl-C, from parsed arguments."""
    try:
        site = site_of(args)
    except CheckoutError as e:
        print(f"picklematrix preview: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not (site / PAGE).is_file():
        print(f"picklematrix preview: no report in {site} (no {PAGE}): build it first with `./nox -s report` "
              "(or `picklematrix report`), or name the site with --html DIR", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        server = serve(site, args.port)
    except OSError as e:
        why = (f"port {args.port} on {HOST} is taken: choose another with --port N, or --port 0 for a free one"
               if e.errno == errno.EADDRINUSE else f"cannot listen on {HOST}:{args.port}: {e.strerror or e}")
        print(f"picklematrix preview: {why}", file=sys.stderr)
        return EXIT_BAD_INPUT
    # Ctrl-C, and SIGTERM (a CI step's end, `kill`), stop it: the socket is closed, the status is 0. (SIGINT is
    # handled explicitly: a shell starts a background `&` job with it ignored, and Python then never raises.)
    main = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)} if main else {}
    try:  # (from here on: a signal that comes while the URL is printed stops it as cleanly)
        url = f"http://{HOST}:{server.server_address[1]}/{PAGE}"
        print(f"picklematrix preview: serving {site} on http://{HOST}:{server.server_address[1]}/ (Ctrl-C stops "
              f"it)\nmatrix page: {url}", flush=True)
        if args.browser:
            # some browsers block the caller until they exit: the server must not wait for them
            threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.server_close()
    print("picklematrix preview: stopped", flush=True)
    return EXIT_OK

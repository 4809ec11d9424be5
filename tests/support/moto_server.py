"""Starts moto's server (as `moto_server`) for tests/usage_eventbridge.rs, with one fix.

moto delivers an EventBridge event to an SQS target through its input-template parser, which
parses eight JSONPath expressions per event, and jsonpath_ng rebuilds its parser tables on every
parse: about 0.3 s per event delivered, so a PutEvents call of 10 entries takes seconds where
EventBridge takes milliseconds. Memoizing the parse (the expressions are immutable) brings it to
milliseconds. Everything else is moto_server as installed.

    moto_server.py -H 127.0.0.1 -p PORT
"""

import functools
import sys

try:
    import jsonpath_ng.ext
    from moto.server import main
except ImportError as e:
    sys.exit(f'cannot import moto\'s server ({e}): pip install "moto[server]"')

jsonpath_ng.ext.parse = functools.lru_cache(maxsize=None)(jsonpath_ng.ext.parse)

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

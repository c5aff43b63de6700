"""moto server, handling one request at a time.

DynamoDB applies each conditional write atomically. moto's threaded server checks a condition
and then writes without a lock, so two concurrent conditional updates of one item can both
succeed there, which DynamoDB never allows. The race tests in tests/dynamo.rs need the real
guarantee, so this runs `moto_server` (same arguments) with its WSGI application behind a
lock. Everything else is moto's own server.
"""

import sys
import threading

import moto.server as server

_Base = server.DomainDispatcherApplication


class _OneAtATime(_Base):
    _lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self._lock:
            return list(super().__call__(environ, start_response))


server.DomainDispatcherApplication = _OneAtATime

if __name__ == "__main__":
    server.main(sys.argv[1:])

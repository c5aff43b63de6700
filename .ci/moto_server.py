"""moto server, handling one request at a time, with transactions that undo by item.

DynamoDB applies each conditional write atomically. moto's threaded server checks a condition
and then writes without a lock, so two concurrent conditional updates of one item can both
succeed there, which DynamoDB never allows. The race tests in tests/dynamo.rs need the real
guarantee, so this runs `moto_server` (same arguments) with its WSGI application behind a
lock.

moto's TransactWriteItems deep-copies every table it touches, once per item of the transaction,
to roll back a cancelled transaction: a transaction then costs time and memory in proportion to
the table (about 1.3 MB per transaction on a table of 1,500 items, never given back), which
made moto the limit of the DynamoDB tests' size. Here the table copy is skipped and each item
the transaction names is saved before it runs and put back (or deleted) if it is cancelled:
the same outcome, since a transaction writes only the items it names. Everything else is moto's
own server.
"""

import copy
import sys
import threading

import moto.dynamodb.models as dynamodb
import moto.server as server

_Base = server.DomainDispatcherApplication


class _OneAtATime(_Base):
    _lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self._lock:
            return list(super().__call__(environ, start_response))


class _NoTableCopy:
    """`copy` as moto's DynamoDB backend sees it: a table is not copied (the undo log below
    restores its items instead); anything else is."""

    @staticmethod
    def deepcopy(value, memo=None):
        if isinstance(value, dynamodb.Table):
            return value
        return copy.deepcopy(value, memo)


def _key(table, op):
    if "Key" in op:
        return op["Key"]
    item = op.get("Item", {})
    names = [table.hash_key_attr, table.range_key_attr]
    return {name: item[name] for name in names if name and name in item}


_transact = dynamodb.DynamoDBBackend.transact_write_items


def _transact_write_items(self, transact_items):
    saved = []
    for entry in transact_items:
        op = next(iter(entry.values()), {})
        name = op.get("TableName") if isinstance(op, dict) else None
        if name not in self.tables:
            continue
        key = _key(self.tables[name], op)
        try:
            current = self.get_item(name, key)
        except Exception:  # noqa: BLE001 - a bad key: moto's own call reports it
            continue
        before = copy.deepcopy(current.to_json()["Attributes"]) if current else None
        saved.append((name, key, before))
    try:
        return _transact(self, transact_items)
    except Exception:
        for name, key, before in reversed(saved):
            if before is None:
                self.delete_item(name, key)
            else:
                self.put_item(name, before)
        raise


dynamodb.copy = _NoTableCopy
dynamodb.DynamoDBBackend.transact_write_items = _transact_write_items
server.DomainDispatcherApplication = _OneAtATime

if __name__ == "__main__":
    server.main(sys.argv[1:])

"""Start the Lambda's bootstrap against an emulated Lambda Runtime API and time it.

The Runtime API is the HTTP interface a custom runtime polls (AWS Lambda Developer Guide,
"Using the Lambda runtime API for custom runtimes"): GET
/2018-06-01/runtime/invocation/next hands out an invocation (its id in
Lambda-Runtime-Aws-Request-Id, its deadline in Lambda-Runtime-Deadline-Ms), and the runtime
answers with POST /2018-06-01/runtime/invocation/<id>/response (or .../error). This script serves
the given payloads in order, one per invocation, then stops the process and prints, per
invocation, the time from the process's start to its answer, and the process's peak RSS
(getrusage of the child, as /usr/bin/time reports it).

    python3 benches/lambda_start.py BOOTSTRAP PAYLOAD... (JSON files; "tick" for a tick)

The bootstrap reads DynamoDB at AWS_ENDPOINT_URL (moto server: `.ci/moto_server.py`), table
TRAILWATCH_TABLE (created here when missing; needs boto3, which moto brings). README "Lambda"
gives one run's figures.
"""

import http.server
import os
import re
import resource
import subprocess
import sys
import threading
import time

API = "/2018-06-01/runtime/invocation/"


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        print("usage: lambda_start.py BOOTSTRAP PAYLOAD...", file=sys.stderr)
        return 2
    bootstrap, names = sys.argv[1], sys.argv[2:]
    payloads = [
        b'{"trailwatch":"tick"}' if name == "tick" else open(name, "rb").read()
        for name in names
    ]
    table = os.environ.setdefault("TRAILWATCH_TABLE", "trailwatch-start")
    ensure_table(table)

    answers: list[tuple[float, int, bytes]] = []
    done = threading.Event()
    state = {"next": 0}

    class Runtime(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def do_GET(self):
            if not self.path.endswith("/next"):
                self.send_error(404)
                return
            index = state["next"]
            if index >= len(payloads):
                done.set()
                time.sleep(3600)  # the process is stopped meanwhile
                return
            state["next"] += 1
            body = payloads[index]
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Lambda-Runtime-Aws-Request-Id", f"start-{index}")
            self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 300_000))
            self.send_header(
                "Lambda-Runtime-Invoked-Function-Arn",
                "arn:aws:lambda:us-east-1:111111111111:function:trailwatch",
            )
            self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            match = re.search(r"/invocation/start-(\d+)/(response|error)$", self.path)
            if match:
                answers.append((time.monotonic(), int(match.group(1)), body))
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Runtime)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(os.environ)
    env.update(
        {
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}",
            "AWS_LAMBDA_FUNCTION_NAME": "trailwatch",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/trailwatch",
            "AWS_LAMBDA_LOG_STREAM_NAME": "start",
        }
    )
    with open(os.devnull, "wb") as sink:
        started = time.monotonic()
        process = subprocess.Popen([bootstrap], env=env, stdout=sink)
        finished = done.wait(timeout=600)
        process.terminate()
        process.wait()
    # The bootstrap is this script's only child: its peak RSS in KiB (Linux).
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    server.shutdown()
    if not finished:
        print("the bootstrap did not take every invocation within 10 minutes", file=sys.stderr)
        return 1
    previous = started
    for at, index, body in answers:
        summary = body.decode(errors="replace")[:120]
        print(
            f"invocation {index} ({names[index]}): answered {1000 * (at - started):.0f} ms after "
            f"start ({1000 * (at - previous):.0f} ms after the previous answer): {summary}"
        )
        previous = at
    print(f"peak RSS: {peak / 1024:.1f} MiB")
    return 0


def ensure_table(table: str) -> None:
    """Create the table as the adapter's `create_table` does, when it is missing."""
    import boto3

    client = boto3.client("dynamodb")
    try:
        client.describe_table(TableName=table)
        return
    except client.exceptions.ResourceNotFoundException:
        pass
    client.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": name, "AttributeType": kind}
            for name, kind in [("pk", "S"), ("sk", "S"), ("due_pk", "S"), ("due_at", "N")]
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "due",
                "KeySchema": [
                    {"AttributeName": "due_pk", "KeyType": "HASH"},
                    {"AttributeName": "due_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )


if __name__ == "__main__":
    sys.exit(main())

"""boto3 helper for tests/usage_eventbridge.rs and tests/workflow_events.rs: prepares and reads
moto's EventBridge and SQS.

    aws_helper.py ENDPOINT setup BUS SOURCE
        Creates the event bus BUS, a rule on it matching `source` = SOURCE and DetailType
        prefix `mozaiks.usage.` (as template.yaml's UsageToBillingRule), and an SQS queue as
        its target, then primes moto's delivery path once on a throwaway bus (its first
        delivery builds parser tables, ~0.4 s) so that timings measure the runtime, not moto's
        start-up. Prints {"queue_url": ..., "bus_arn": ...}.
    aws_helper.py ENDPOINT setup-bus BUS PATTERN
        Creates the event bus BUS, a rule on it with the event pattern PATTERN (JSON), and an
        SQS queue as its target (for a consumer of workflow events). Prints {"queue_url": ...,
        "bus_arn": ...}. Run `setup` first: it primes moto once.
    aws_helper.py ENDPOINT drain QUEUE_URL COUNT SECONDS
        Receives (and deletes) messages until COUNT have arrived or SECONDS have passed, then
        polls once more so that extra messages are seen too. Prints the message bodies (parsed
        EventBridge events) as a JSON list.

Dummy credentials; region us-east-1; loopback only.
"""

import json
import sys
import time

import boto3


def clients(endpoint):
    common = dict(
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        aws_session_token="testing",
    )
    return boto3.client("events", **common), boto3.client("sqs", **common)


def setup(endpoint, bus, source):
    events, sqs = clients(endpoint)
    pattern = {"source": [source], "detail-type": [{"prefix": "mozaiks.usage."}]}
    created = bus_with_queue(events, sqs, bus, pattern, "billing")
    prime(events, sqs)
    print(json.dumps(created))


def setup_bus(endpoint, bus, pattern):
    events, sqs = clients(endpoint)
    print(json.dumps(bus_with_queue(events, sqs, bus, json.loads(pattern), "consumer")))


def bus_with_queue(events, sqs, bus, pattern, target):
    bus_arn = events.create_event_bus(Name=bus)["EventBusArn"]
    queue_url = sqs.create_queue(QueueName=f"{bus}-{target}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    rule = f"{bus}-to-{target}"
    events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": target, "Arn": queue_arn}])
    return {"queue_url": queue_url, "bus_arn": bus_arn}


def prime(events, sqs):
    bus = "moto-priming"
    events.create_event_bus(Name=bus)
    queue_url = sqs.create_queue(QueueName=bus)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events.put_rule(Name=bus, EventBusName=bus, EventPattern=json.dumps({"source": ["priming"]}))
    events.put_targets(Rule=bus, EventBusName=bus, Targets=[{"Id": "q", "Arn": queue_arn}])
    events.put_events(
        Entries=[{"Source": "priming", "DetailType": "priming", "Detail": "{}", "EventBusName": bus}]
    )


def drain(endpoint, queue_url, count, seconds):
    _, sqs = clients(endpoint)
    bodies = []
    deadline = time.monotonic() + seconds
    extra_poll_done = False
    while True:
        if len(bodies) >= count or time.monotonic() >= deadline:
            if extra_poll_done:
                break
            extra_poll_done = True
        answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in answer.get("Messages", []):
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    print(json.dumps(bodies))


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    endpoint, command = argv[1], argv[2]
    if command == "setup" and len(argv) == 5:
        setup(endpoint, argv[3], argv[4])
    elif command == "setup-bus" and len(argv) == 5:
        setup_bus(endpoint, argv[3], argv[4])
    elif command == "drain" and len(argv) == 6:
        drain(endpoint, argv[3], int(argv[4]), float(argv[5]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)

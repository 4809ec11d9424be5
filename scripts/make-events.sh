#!/usr/bin/env bash
# `make events`: write one sample event per trigger into events/, each carrying a long-lived
# development token (dev keys only: these tokens are worthless against any real deployment).
set -euo pipefail
cd "$(dirname "$0")/.."
token=$(cargo run --quiet --locked --example mint_dev_token -- --workflow-id hello --exp-days 3650 \
  --claims '{"app_id":"app-dev","user_id":"user-dev","sub":"user-dev","chat_id":"chat-dev"}')
TOKEN="$token" python3 - <<'PY'
import json, os
token = os.environ["TOKEN"]
body = json.dumps({"name": "Ada"})
headers = {"authorization": f"Bearer {token}", "content-type": "application/json",
           "host": "api.example.com", "user-agent": "curl/8.5.0"}
ctx_http = {"method": "POST", "path": "/executions", "protocol": "HTTP/1.1",
            "sourceIp": "203.0.113.7", "userAgent": "curl/8.5.0"}
events = {
  "direct.json": {"launch_token": token, "input": {"name": "Ada"}},
  "apigw-v1.json": {
    "resource": "/executions", "path": "/executions", "httpMethod": "POST",
    "headers": {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Host": "abc123.execute-api.us-east-1.amazonaws.com"},
    "multiValueHeaders": {"Authorization": [f"Bearer {token}"], "Content-Type": ["application/json"], "Host": ["abc123.execute-api.us-east-1.amazonaws.com"]},
    "queryStringParameters": None, "multiValueQueryStringParameters": None,
    "pathParameters": None, "stageVariables": None,
    "requestContext": {"accountId": "123456789012", "apiId": "abc123", "resourceId": "r1", "resourcePath": "/executions",
                       "httpMethod": "POST", "path": "/prod/executions", "stage": "prod", "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
                       "requestTimeEpoch": 1795560741000, "protocol": "HTTP/1.1",
                       "identity": {"sourceIp": "203.0.113.7", "userAgent": "curl/8.5.0"}},
    "body": body, "isBase64Encoded": False},
  "apigw-v2.json": {
    "version": "2.0", "routeKey": "POST /executions", "rawPath": "/executions", "rawQueryString": "",
    "headers": headers,
    "requestContext": {"accountId": "123456789012", "apiId": "abc123", "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
                       "domainPrefix": "abc123", "requestId": "JKJaXmPLvHcESHA=", "routeKey": "POST /executions", "stage": "$default",
                       "time": "24/Nov/2026:22:52:21 +0000", "timeEpoch": 1795560741000, "http": ctx_http},
    "body": body, "isBase64Encoded": False},
  "function-url.json": {
    "version": "2.0", "routeKey": "$default", "rawPath": "/executions", "rawQueryString": "",
    "headers": dict(headers, host="abcdefghij.lambda-url.us-east-1.on.aws"),
    "requestContext": {"accountId": "anonymous", "apiId": "abcdefghij", "domainName": "abcdefghij.lambda-url.us-east-1.on.aws",
                       "domainPrefix": "abcdefghij", "requestId": "b6c1d2e3-0000-4000-8000-000000000001", "routeKey": "$default", "stage": "$default",
                       "time": "24/Nov/2026:22:52:21 +0000", "timeEpoch": 1795560741000, "http": ctx_http},
    "body": body, "isBase64Encoded": False},
  "alb.json": {
    "requestContext": {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/mozaiks/6d0ecf831eec9f09"}},
    "httpMethod": "POST", "path": "/executions", "queryStringParameters": {},
    "headers": headers, "body": body, "isBase64Encoded": False},
}
for name, event in events.items():
    with open(os.path.join("events", name), "w") as f:
        json.dump(event, f, indent=2)
        f.write("\n")
    print("wrote events/" + name)
PY

#!/bin/sh
# The tool host on AWS Lambda (template.yaml, DeployToolHost=true): the Lambda Web Adapter layer
# (AWS_LAMBDA_EXEC_WRAPPER=/opt/bootstrap) runs this and forwards the Function URL's requests
# to port 8080. It serves the Python tools of the MozaiksAI folders bundled beside it.
export PYTHONPATH="$LAMBDA_TASK_ROOT:$PYTHONPATH"
exec python3 -m mozaiks_toolhost --host 0.0.0.0 --port "${PORT:-8080}" "$LAMBDA_TASK_ROOT/workflows"

//! The floor for `make bench`: a `lambda_runtime` function that answers its event back, built
//! with the same profile and runtime settings as `bootstrap`. Cold start and warm latency of the
//! runtime are reported against it (BENCHMARKS.md).

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::value::RawValue;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Box<RawValue>>| async move {
        Ok::<_, Error>(event.payload)
    }))
    .await
}

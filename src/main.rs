//! `bootstrap`: read the configuration once, build the app, serve invocations.
//!
//! A configuration or bundle error stops the start: it is logged and reported through the
//! Runtime API's init-error call (what CloudWatch shows for a failed init), and the process
//! exits non-zero.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use lambda_runtime::tower::layer::layer_fn;
use lambda_runtime::tower::Service;
use lambda_runtime::{layers::TracingLayer, service_fn, LambdaEvent, LambdaInvocation, Runtime};
use mozaiks_runtime::config::Config;
use mozaiks_runtime::execution::App;
use mozaiks_runtime::invoke;
use serde_json::value::RawValue;

/// Error type of the init-error report.
const INIT_ERROR_TYPE: &str = "Runtime.ConfigurationError";

#[tokio::main(flavor = "current_thread")]
async fn main() {
    init_logging();

    let app = match Config::from_env() {
        Ok(config) => App::new(config).await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let app = match app {
        Ok(app) => app,
        Err(message) => {
            tracing::error!(error = %message, "the function cannot start");
            report_init_error(&message).await;
            std::process::exit(1);
        }
    };
    tracing::info!(workflows = app.workflow_count(), "mozaiks-runtime ready");

    // Built once, shared by every invocation for the life of the process.
    let app: &'static App = Box::leak(Box::new(app));
    let handler = service_fn(move |event: LambdaEvent<Box<RawValue>>| async move {
        Ok::<_, lambda_runtime::Error>(invoke::handle(app, event).await)
    });
    let runtime = Runtime::new(handler)
        .layer(TracingLayer::new())
        .layer(layer_fn(move |inner| JsonGuard { inner, app }));
    if let Err(e) = runtime.run().await {
        tracing::error!(error = %e, "the Lambda runtime loop stopped");
        std::process::exit(1);
    }
}

/// Logs to stdout as Lambda's advanced logging controls ask: JSON when `AWS_LAMBDA_LOG_FORMAT`
/// is `JSON`, at the level of `AWS_LAMBDA_LOG_LEVEL` (else `RUST_LOG`, else `INFO`), without
/// timestamps (CloudWatch adds them). Equivalent to `lambda_runtime`'s default subscriber except
/// that the level is one level for every target: per-target `RUST_LOG` directives would need
/// `tracing-subscriber`'s `env-filter`, whose regex engine is ~0.5 MB of the package.
fn init_logging() {
    use tracing_subscriber::filter::LevelFilter;
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|text| text.trim().parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let logs = tracing_subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_max_level(level)
        .with_writer(std::io::stdout);
    if json {
        logs.json().init();
    } else {
        logs.init();
    }
}

/// Makes non-JSON payloads reach the handler as a marker (see [`invoke::json_guard`]) instead
/// of failing deserialization inside the runtime as a function error; and, once the answer of
/// an invocation whose run was cut while computing has been sent (the inner service posts it),
/// ends the process, whose engine thread cannot be stopped (see `engine_thread.rs`).
#[derive(Clone)]
struct JsonGuard<S> {
    inner: S,
    app: &'static App,
}

impl<S> Service<LambdaInvocation> for JsonGuard<S>
where
    S: Service<LambdaInvocation>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut invocation: LambdaInvocation) -> Self::Future {
        invocation.body = invoke::json_guard(invocation.body);
        let answered = self.inner.call(invocation);
        let app = self.app;
        Box::pin(async move {
            let result = answered.await;
            if app.must_exit() {
                tracing::warn!("ending the process: a run is still computing on the engine thread");
                std::process::exit(0);
            }
            result
        })
    }
}

/// Posts the init error to the Runtime API, as Lambda expects of a runtime that cannot start.
async fn report_init_error(message: &str) {
    let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") else {
        return; // not under Lambda: the log line is the report
    };
    let Ok(endpoint) = format!("http://{api}").parse() else {
        return;
    };
    let Ok(client) = lambda_runtime_api_client::Client::builder()
        .with_endpoint(endpoint)
        .build()
    else {
        return;
    };
    let body = serde_json::json!({ "errorType": INIT_ERROR_TYPE, "errorMessage": message });
    let request = lambda_runtime_api_client::build_request()
        .method("POST")
        .uri("/2018-06-01/runtime/init/error")
        .header("lambda-runtime-function-error-type", INIT_ERROR_TYPE)
        .header("content-type", "application/json")
        .body(lambda_runtime_api_client::body::Body::from(
            body.to_string(),
        ));
    if let Ok(request) = request {
        if let Err(e) = client.call(request).await {
            tracing::error!(error = %e, "could not report the init error to the Runtime API");
        }
    }
}

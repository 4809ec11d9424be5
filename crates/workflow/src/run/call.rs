//! `call`: a function of `use.functions` (its task runs on `with`, or on the calling task's
//! input), `call: http` and `call: openapi` (the operation resolved once, fetching its document
//! when named by URL), their requests sent through the run's metered HTTP client.

use super::{expression_error, Frame, Runner, Stop, NULL};
use crate::a2a::{self, A2aCall};
use crate::error::WorkflowError;
use crate::http::{self, HttpCall};
use crate::mcp::{self, McpCall, McpFailure, Session};
use crate::model::CallFunction;
use crate::openapi::{DocSource, OpenApiCall, Operation, OperationError};
use crate::value::{from_json, to_json};
use jaq_json::Val;
use serde_json::Value;
use std::sync::Arc;

impl<'r> Runner<'r> {
    /// `call` of a function of `use.functions`.
    pub(super) async fn call_function(
        &self,
        call: &CallFunction,
        instance: &str,
        input: &Val,
        descriptor: &Val,
        frame: Frame<'_>,
    ) -> Result<Val, Stop> {
        let depth = self.deeper(frame, instance)?;
        let Some(function) = self.workflow.functions.get(call.index) else {
            return Err(Stop::Fault(WorkflowError::runtime(
                instance,
                "the called function is missing".into(),
            )));
        };
        let arguments = match &call.with {
            Some(with) => self
                .eval(input, &NULL, descriptor, frame.locals, |args| {
                    with.eval(input, args)
                })
                .map_err(|e| expression_error(instance, e))?,
            None => input.clone(),
        };
        let inner = Frame {
            locals: &[],
            limit: frame.limit,
            depth,
        };
        let (output, _flow) = self.task_boxed(function, arguments, inner).await?;
        Ok(output)
    }

    /// `call: http`: the request, evaluated, sent; the output as `output` asks.
    pub(super) async fn call_http(
        &self,
        call: &HttpCall,
        instance: &str,
        input: &Val,
        descriptor: &Val,
        frame: Frame<'_>,
    ) -> Result<Val, Stop> {
        let request = self
            .eval(input, &NULL, descriptor, frame.locals, |args| {
                call.request(input, args)
            })
            .map_err(|e| Stop::Fault(expression_error(instance, e)))?;
        let response = self.send(&request, call.redirect, instance).await?;
        Ok(http::output(call.output, &request, &response))
    }

    /// `call: openapi`: resolve the operation (fetching the document once), then call it.
    pub(super) async fn openapi(
        &self,
        call: &'r OpenApiCall,
        instance: &str,
        input: &Val,
        descriptor: &Val,
        frame: Frame<'_>,
    ) -> Result<Val, Stop> {
        let operation = match call.operation.get() {
            Some(operation) => operation.clone(),
            None => {
                let operation = Arc::new(
                    self.fetch_operation(call, instance, input, descriptor, frame)
                        .await?,
                );
                let _ = call.operation.set(operation.clone());
                operation
            }
        };
        let request = self
            .eval(input, &NULL, descriptor, frame.locals, |args| {
                Ok(call.request(&operation, input, args))
            })
            .map_err(|e| expression_error(instance, e))?
            .map_err(|e| match e {
                OperationError::Expression(e) => Stop::Fault(expression_error(instance, e)),
                OperationError::Parameters(message) => {
                    Stop::Fault(WorkflowError::validation(instance, message))
                }
            })?;
        let response = self.send(&request, call.redirect, instance).await?;
        Ok(http::output(call.output, &request, &response))
    }

    /// `call: mcp`: a session (initialize, the method, the session's end) within `timeout`;
    /// the output is the method's JSON-RPC result.
    pub(super) async fn call_mcp(
        &self,
        call: &McpCall,
        instance: &str,
        input: &Val,
        descriptor: &Val,
        frame: Frame<'_>,
    ) -> Result<Val, Stop> {
        let fault = |e| Stop::Fault(expression_error(instance, e));
        let (target, params, timeout) = self
            .eval(input, &NULL, descriptor, frame.locals, |args| {
                let target = call.server.target(input, args)?;
                let params = match &call.parameters {
                    None => Val::Null,
                    Some(template) => template.eval(input, args)?,
                };
                let timeout = call
                    .timeout
                    .as_ref()
                    .map(|t| t.eval(input, args))
                    .transpose()?;
                Ok((target, params, timeout))
            })
            .map_err(fault)?;
        let params = to_json(&params)
            .map_err(|message| {
                WorkflowError::expression(instance, format!("`parameters`: {message}"))
            })
            .and_then(|params| {
                mcp::params_of(params, "parameters")
                    .map_err(|message| WorkflowError::expression(instance, message))
            })?;
        let url = target.url.clone();
        let http = &self.workflow.services.http;
        let meter = &self.shared.http;
        let exchange = async {
            let mut session =
                Session::open(http, meter, target, &call.protocol_version, &call.client).await?;
            let result = session.request(&call.method, params).await;
            session.close().await;
            result
        };
        let result = match timeout {
            None => exchange.await,
            Some(after) => match tokio::time::timeout(after, exchange).await {
                Ok(result) => result,
                Err(_elapsed) => {
                    return Err(Stop::Fault(WorkflowError::timeout(
                        instance,
                        format!(
                            "the MCP call to {} did not finish within its timeout of {} ms",
                            http::display_url(&url),
                            after.as_millis()
                        ),
                    )))
                }
            },
        };
        result
            .map(from_json)
            .map_err(|failure| Stop::Fault(failure.into_error(instance, &url, &call.method)))
    }

    /// `call: a2a`: the agent found (its card fetched when named by one), the method sent; the
    /// output is the JSON-RPC result (a stream's: every result, in order).
    pub(super) async fn call_a2a(
        &self,
        call: &A2aCall,
        instance: &str,
        input: &Val,
        descriptor: &Val,
        frame: Frame<'_>,
    ) -> Result<Val, Stop> {
        let (resolved, params) = self
            .eval(input, &NULL, descriptor, frame.locals, |args| {
                let resolved = call.resolve(input, args)?;
                let params = match &call.parameters {
                    None => Val::Null,
                    Some(template) => template.eval(input, args)?,
                };
                Ok((resolved, params))
            })
            .map_err(|e| Stop::Fault(expression_error(instance, e)))?;
        let params = to_json(&params)
            .map_err(|message| {
                WorkflowError::expression(instance, format!("`parameters`: {message}"))
            })
            .and_then(|params| {
                mcp::params_of(params, "parameters")
                    .map_err(|message| WorkflowError::expression(instance, message))
            })?
            .unwrap_or_else(|| serde_json::json!({}));
        let params = call.params(params);
        let http = &self.workflow.services.http;
        a2a::call(http, &self.shared.http, call, resolved, params)
            .await
            .map(from_json)
            .map_err(|(failure, url)| {
                let mut error =
                    WorkflowError::runtime(instance, failure.detail_of("A2A", &url, &call.method));
                if let McpFailure::Transport(transport) = &failure {
                    error.status = transport.status;
                }
                Stop::Fault(error)
            })
    }

    /// Sends an HTTP request of a `call` task (metered); a failure faults the task at `instance`.
    async fn send(
        &self,
        request: &http::Request,
        redirect: bool,
        instance: &str,
    ) -> Result<http::Response, Stop> {
        self.workflow
            .services
            .http
            .send(request, redirect, &self.shared.http)
            .await
            .map_err(|failure| Stop::Fault(failure.into_error(instance)))
    }

    /// Fetches and parses an OpenAPI document named by URL, and finds the operation.
    async fn fetch_operation(
        &self,
        call: &OpenApiCall,
        instance: &str,
        input: &Val,
        descriptor: &Val,
        frame: Frame<'_>,
    ) -> Result<Operation, Stop> {
        let DocSource::Url { url, auth } = &call.source else {
            return Err(Stop::Fault(WorkflowError::configuration(
                instance,
                "the bundled OpenAPI operation was not resolved at load".into(),
            )));
        };
        let mut headers = vec![(
            "accept".to_owned(),
            "application/json, application/yaml;q=0.9".to_owned(),
        )];
        if let Some(auth) = auth {
            let value = self
                .eval(input, &NULL, descriptor, frame.locals, |args| {
                    auth.header_value(input, args)
                })
                .map_err(|e| expression_error(instance, e))?;
            headers.push(("authorization".into(), value));
        }
        let request = http::Request {
            method: hyper::Method::GET,
            url: url.clone(),
            headers,
            body: None,
        };
        let response = self
            .workflow
            .services
            .http
            .send(&request, true, &self.shared.http)
            .await
            .map_err(|failure| Stop::Fault(failure.into_error(instance)))?;
        let document: Value = serde_json::from_slice(&response.body)
            .or_else(|_| serde_yaml_ng::from_slice(&response.body))
            .map_err(|_| {
                Stop::Fault(WorkflowError::configuration(
                    instance,
                    format!(
                        "the OpenAPI document at {} is neither JSON nor YAML",
                        http::display_url(url)
                    ),
                ))
            })?;
        Operation::resolve(&document, Some(url), &call.operation_id).map_err(|message| {
            Stop::Fault(WorkflowError::configuration(
                instance,
                format!(
                    "the OpenAPI document at {}: {message}",
                    http::display_url(url)
                ),
            ))
        })
    }
}

//! `call`: a function of `use.functions` (its task runs on `with`, or on the calling task's
//! input), `call: http` and `call: openapi` (the operation resolved once, fetching its document
//! when named by URL), their requests sent through the run's metered HTTP client.

use super::{expression_error, Frame, Runner, Stop, NULL};
use crate::error::WorkflowError;
use crate::http::{self, HttpCall};
use crate::model::CallFunction;
use crate::openapi::{DocSource, OpenApiCall, Operation, OperationError};
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

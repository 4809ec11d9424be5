//! The task kinds that reach outside the task: `call` (`http`, `openapi`, `agents`, a function of
//! `use.functions`), `emit` and `run: workflow`.

use super::components::authentication;
use super::{check_fields, child, describe, map, required, required_str, Invalid, Loader};
use crate::a2a::{self, A2aCall, AgentRef};
use crate::expr::{strip_expression, Position, Scope, Template};
use crate::http::{parse_url, Endpoint, HttpCall, OutputFormat, UriSpec};
use crate::mcp::{self, ClientInfo, McpCall, McpServer};
use crate::model::{CallFunction, Emit, RunWorkflow, SubflowLink, TaskKind};
use crate::openapi::{DocSource, OpenApiCall, Operation};
use hyper::Method;
use serde_json::{Map, Value};
use std::sync::{Arc, OnceLock};

impl Loader<'_> {
    /// `call`: `http`, `openapi`, `agents`, or the name of a function of `use.functions`.
    pub(super) fn call(
        &self,
        name: &str,
        fields: &Map<String, Value>,
        pointer: &str,
        scope: &Scope,
    ) -> Result<TaskKind, Invalid> {
        let function = fields
            .get("call")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let with_at = child(pointer, "with");
        let with = fields.get("with");
        match function {
            "http" => {
                let with = map(required(fields, pointer, "with")?, &with_at, "`with`")?;
                Ok(TaskKind::CallHttp(Box::new(
                    self.http(with, &with_at, scope)?,
                )))
            }
            "openapi" => {
                let with = map(required(fields, pointer, "with")?, &with_at, "`with`")?;
                Ok(TaskKind::CallOpenApi(Box::new(
                    self.openapi(with, &with_at, scope)?,
                )))
            }
            "agents" => {
                let with = map(required(fields, pointer, "with")?, &with_at, "`with`")?;
                Ok(TaskKind::Agents(Box::new(
                    self.agents(with, pointer, scope)?,
                )))
            }
            "mcp" => {
                let with = map(required(fields, pointer, "with")?, &with_at, "`with`")?;
                Ok(TaskKind::CallMcp(Box::new(
                    self.mcp(with, &with_at, scope)?,
                )))
            }
            "a2a" => {
                let with = map(required(fields, pointer, "with")?, &with_at, "`with`")?;
                Ok(TaskKind::CallA2a(Box::new(
                    self.a2a(with, &with_at, scope)?,
                )))
            }
            function => {
                let Some(index) = self.components.functions.iter().position(|f| f == function)
                else {
                    let why = if function.contains('@') || function.contains("://") {
                        "functions from catalogs or URLs are not supported (everything is loaded from the bundle at init); copy the function into `use.functions`".to_owned()
                    } else {
                        format!(
                            "it is not `http` or `openapi`, and `use.functions` has no function by that name ({})",
                            if self.components.functions.is_empty() {
                                "none is defined".to_owned()
                            } else {
                                format!("defined: {}", self.components.functions.join(", "))
                            }
                        )
                    };
                    return Err(Invalid::new(
                        &child(pointer, "call"),
                        format!("task `{name}` calls `{function}`, but {why}"),
                    ));
                };
                let with = match with {
                    None => None,
                    Some(value @ Value::Object(_)) => {
                        Some(self.template(value, Position::TaskDefinition, scope, &with_at)?)
                    }
                    Some(other) => {
                        return Err(Invalid::new(
                            &with_at,
                            format!(
                                "`with` must be a map of the function's arguments; found {}",
                                describe(other)
                            ),
                        ))
                    }
                };
                Ok(TaskKind::CallFunction(Box::new(CallFunction {
                    index,
                    with,
                })))
            }
        }
    }

    /// `call: a2a`'s `with`.
    fn a2a(
        &self,
        with: &Map<String, Value>,
        pointer: &str,
        scope: &Scope,
    ) -> Result<A2aCall, Invalid> {
        check_fields(
            with,
            pointer,
            "`call: a2a` arguments",
            &["method", "agentCard", "server", "parameters"],
        )?;
        let method = required_str(with, pointer, "method", "message/send")?;
        if !a2a::METHODS.contains(&method) {
            return Err(Invalid::new(
                &child(pointer, "method"),
                format!(
                    "`{method}` is not an A2A method `call: a2a` sends; use one of {}",
                    a2a::METHODS.join(", ")
                ),
            ));
        }
        let agent = match (with.get("agentCard").filter(|c| !c.is_null()), with.get("server").filter(|s| !s.is_null())) {
            (Some(card), _) => {
                let at = child(pointer, "agentCard");
                let card = map(card, &at, "`agentCard` (an external resource)")?;
                check_fields(card, &at, "`agentCard`", &["name", "endpoint"])?;
                AgentRef::Card(self.endpoint(required(card, &at, "endpoint")?, &child(&at, "endpoint"), scope)?)
            }
            (None, Some(server)) => AgentRef::Server(self.endpoint(server, &child(pointer, "server"), scope)?),
            (None, None) => {
                return Err(Invalid::new(
                    pointer,
                    "`call: a2a` needs `agentCard` (the agent card's endpoint) or `server` (the agent's JSON-RPC endpoint)",
                ))
            }
        };
        let parameters = self.map_or_expr(with, "parameters", pointer, scope)?;
        Ok(A2aCall {
            method: method.to_owned(),
            agent,
            parameters,
        })
    }

    /// `call: mcp`'s `with`.
    fn mcp(
        &self,
        with: &Map<String, Value>,
        pointer: &str,
        scope: &Scope,
    ) -> Result<McpCall, Invalid> {
        check_fields(
            with,
            pointer,
            "`call: mcp` arguments",
            &[
                "protocolVersion",
                "method",
                "parameters",
                "timeout",
                "transport",
                "client",
            ],
        )?;
        let method = required_str(with, pointer, "method", "tools/call")?;
        if !mcp::METHODS.contains(&method) {
            return Err(Invalid::new(
                &child(pointer, "method"),
                format!(
                    "`{method}` is not an MCP method `call: mcp` sends; use one of {}",
                    mcp::METHODS.join(", ")
                ),
            ));
        }
        let protocol_version = match with.get("protocolVersion") {
            None | Some(Value::Null) => mcp::DEFAULT_PROTOCOL.to_owned(),
            Some(Value::String(version)) if mcp::SPOKEN.contains(&version.as_str()) => {
                version.clone()
            }
            Some(other) => {
                return Err(Invalid::new(
                    &child(pointer, "protocolVersion"),
                    format!(
                        "protocol version {} is not one this runtime speaks ({})",
                        describe(other),
                        mcp::SPOKEN.join(", ")
                    ),
                ))
            }
        };
        let parameters = self.map_or_expr(with, "parameters", pointer, scope)?;
        let timeout = with
            .get("timeout")
            .map(|value| {
                self.duration(
                    value,
                    Position::TaskDefinition,
                    scope,
                    &child(pointer, "timeout"),
                )
            })
            .transpose()?;
        let client = match with.get("client") {
            None | Some(Value::Null) => ClientInfo::default(),
            Some(value) => {
                let at = child(pointer, "client");
                let fields = map(value, &at, "`client`")?;
                check_fields(fields, &at, "`client`", &["name", "version"])?;
                ClientInfo {
                    name: required_str(fields, &at, "name", "synapse")?.to_owned(),
                    version: required_str(fields, &at, "version", "1.0.0")?.to_owned(),
                }
            }
        };
        let transport_at = child(pointer, "transport");
        let transport = map(
            required(with, pointer, "transport")?,
            &transport_at,
            "`transport`",
        )?;
        check_fields(
            transport,
            &transport_at,
            "the MCP transport",
            &["http", "stdio", "options"],
        )?;
        if transport.get("stdio").is_some_and(|s| !s.is_null()) {
            return Err(Invalid::new(
                &child(&transport_at, "stdio"),
                "the stdio transport starts the MCP server as a process beside the runtime, which a Lambda function does not do (no process spawning, and a server per invocation); serve it over streamable HTTP and use `transport.http`",
            ));
        }
        if transport
            .get("options")
            .is_some_and(|o| o.as_object().is_none_or(|o| !o.is_empty()))
        {
            return Err(Invalid::new(
                &child(&transport_at, "options"),
                "transport options are not used by this runtime; remove them (set headers under `transport.http.headers`)",
            ));
        }
        let http_at = child(&transport_at, "http");
        let Some(http) = transport.get("http").filter(|h| !h.is_null()) else {
            return Err(Invalid::new(
                &transport_at,
                "the MCP transport needs `http: { endpoint }`",
            ));
        };
        let http = map(http, &http_at, "the HTTP transport")?;
        let server = self.mcp_server(http, &http_at, scope)?;
        Ok(McpCall {
            method: method.to_owned(),
            parameters,
            protocol_version,
            server,
            timeout,
            client,
        })
    }

    /// An MCP server over streamable HTTP: `{ endpoint, headers? }`.
    pub(crate) fn mcp_server(
        &self,
        http: &Map<String, Value>,
        pointer: &str,
        scope: &Scope,
    ) -> Result<McpServer, Invalid> {
        check_fields(
            http,
            pointer,
            "the MCP HTTP transport",
            &["endpoint", "headers"],
        )?;
        let endpoint = self.endpoint(
            required(http, pointer, "endpoint")?,
            &child(pointer, "endpoint"),
            scope,
        )?;
        let headers = self.map_or_expr(http, "headers", pointer, scope)?;
        Ok(McpServer { endpoint, headers })
    }

    /// A field that is a map (a template) or a runtime expression producing one.
    fn map_or_expr(
        &self,
        with: &Map<String, Value>,
        field: &str,
        pointer: &str,
        scope: &Scope,
    ) -> Result<Option<Template>, Invalid> {
        match with.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(value @ Value::Object(_)) => Ok(Some(self.template(
                value,
                Position::TaskDefinition,
                scope,
                &child(pointer, field),
            )?)),
            Some(Value::String(code)) if strip_expression(code).is_some() => {
                Ok(Some(Template::Expr(self.expr(
                    code,
                    Position::TaskDefinition,
                    scope,
                    &child(pointer, field),
                )?)))
            }
            Some(other) => Err(Invalid::new(
                &child(pointer, field),
                format!(
                    "`{field}` must be a map or a runtime expression producing one; found {}",
                    describe(other)
                ),
            )),
        }
    }

    /// `call: http`'s `with`.
    fn http(
        &self,
        with: &Map<String, Value>,
        pointer: &str,
        scope: &Scope,
    ) -> Result<HttpCall, Invalid> {
        check_fields(
            with,
            pointer,
            "`call: http` arguments",
            &[
                "method", "endpoint", "headers", "body", "query", "output", "redirect",
            ],
        )?;
        let method_text = required_str(with, pointer, "method", "get")?;
        let method = Method::from_bytes(method_text.to_ascii_uppercase().as_bytes()).map_err(|_| {
            Invalid::new(
                &child(pointer, "method"),
                format!("`{method_text}` is not an HTTP method; use get, post, put, patch, delete, …"),
            )
        })?;
        let endpoint = self.endpoint(
            required(with, pointer, "endpoint")?,
            &child(pointer, "endpoint"),
            scope,
        )?;
        let map_or_expr = |field: &str| -> Result<Option<Template>, Invalid> {
            match with.get(field) {
                None => Ok(None),
                Some(value @ Value::Object(_)) => Ok(Some(self.template(
                    value,
                    Position::TaskDefinition,
                    scope,
                    &child(pointer, field),
                )?)),
                Some(Value::String(code)) if strip_expression(code).is_some() => {
                    Ok(Some(Template::Expr(self.expr(
                        code,
                        Position::TaskDefinition,
                        scope,
                        &child(pointer, field),
                    )?)))
                }
                Some(other) => Err(Invalid::new(
                    &child(pointer, field),
                    format!(
                        "`{field}` must be a map or a runtime expression producing one; found {}",
                        describe(other)
                    ),
                )),
            }
        };
        let headers = map_or_expr("headers")?;
        let query = map_or_expr("query")?;
        let body = with
            .get("body")
            .map(|body| {
                self.template(
                    body,
                    Position::TaskDefinition,
                    scope,
                    &child(pointer, "body"),
                )
            })
            .transpose()?;
        Ok(HttpCall {
            method,
            endpoint,
            headers,
            query,
            body,
            output: output_format(with, pointer)?,
            redirect: redirect(with, pointer)?,
        })
    }

    /// An endpoint: a URI (template), a `${ … }` expression, or `{ uri, authentication }`.
    fn endpoint(&self, value: &Value, pointer: &str, scope: &Scope) -> Result<Endpoint, Invalid> {
        match value {
            Value::String(uri) => Ok(Endpoint {
                uri: self.uri(uri, pointer, scope)?,
                auth: None,
            }),
            Value::Object(fields) => {
                check_fields(fields, pointer, "the endpoint", &["uri", "authentication"])?;
                let uri = required_str(fields, pointer, "uri", "https://example.com/items/{id}")?;
                let auth = fields
                    .get("authentication")
                    .map(|auth| {
                        authentication(self, auth, &child(pointer, "authentication"), scope)
                    })
                    .transpose()?;
                Ok(Endpoint {
                    uri: self.uri(uri, &child(pointer, "uri"), scope)?,
                    auth,
                })
            }
            other => Err(Invalid::new(
                pointer,
                format!(
                    "the endpoint must be a URI or a map with `uri`; found {}",
                    describe(other)
                ),
            )),
        }
    }

    /// A URI: a `${ … }` expression, or a URI template checked at load.
    fn uri(&self, text: &str, pointer: &str, scope: &Scope) -> Result<UriSpec, Invalid> {
        if strip_expression(text).is_some() {
            return Ok(UriSpec::Expr(self.expr(
                text,
                Position::TaskDefinition,
                scope,
                pointer,
            )?));
        }
        let mut sample = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            sample.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let close = after.find('}').ok_or_else(|| {
                Invalid::new(
                    pointer,
                    format!("the URI template `{text}` has an unclosed `{{`"),
                )
            })?;
            let name = &after[..close];
            if name.is_empty() || name.contains(['{', ' ']) {
                return Err(Invalid::new(
                    pointer,
                    format!("`{{{name}}}` is not a URI template variable; write `{{name}}` (a top-level property of the task input) or use a `${{ … }}` expression"),
                ));
            }
            sample.push('x');
            rest = &after[close + 1..];
        }
        sample.push_str(rest);
        parse_url(&sample).map_err(|message| Invalid::new(pointer, message))?;
        Ok(UriSpec::Template(text.to_owned()))
    }

    /// `call: openapi`'s `with`.
    fn openapi(
        &self,
        with: &Map<String, Value>,
        pointer: &str,
        scope: &Scope,
    ) -> Result<OpenApiCall, Invalid> {
        check_fields(
            with,
            pointer,
            "`call: openapi` arguments",
            &[
                "document",
                "operationId",
                "parameters",
                "authentication",
                "output",
                "redirect",
            ],
        )?;
        let operation_id = required_str(with, pointer, "operationId", "getPetById")?.to_owned();
        let doc_at = child(pointer, "document");
        let document = map(required(with, pointer, "document")?, &doc_at, "`document`")?;
        check_fields(document, &doc_at, "`document`", &["name", "endpoint"])?;
        let endpoint_at = child(&doc_at, "endpoint");
        let (uri, doc_auth) = match required(document, &doc_at, "endpoint")? {
            Value::String(uri) => (uri.as_str(), None),
            Value::Object(fields) => {
                check_fields(
                    fields,
                    &endpoint_at,
                    "the endpoint",
                    &["uri", "authentication"],
                )?;
                let auth = fields
                    .get("authentication")
                    .map(|auth| {
                        authentication(self, auth, &child(&endpoint_at, "authentication"), scope)
                    })
                    .transpose()?;
                (
                    required_str(fields, &endpoint_at, "uri", "openapi/petstore.json")?,
                    auth,
                )
            }
            other => {
                return Err(Invalid::new(
                    &endpoint_at,
                    format!(
                        "the document endpoint must be a URL or a path; found {}",
                        describe(other)
                    ),
                ))
            }
        };
        let parameters = match with.get("parameters") {
            None => None,
            Some(value @ Value::Object(_)) => Some(self.template(
                value,
                Position::TaskDefinition,
                scope,
                &child(pointer, "parameters"),
            )?),
            Some(other) => {
                return Err(Invalid::new(
                    &child(pointer, "parameters"),
                    format!(
                        "`parameters` must be a map of parameter names to values; found {}",
                        describe(other)
                    ),
                ))
            }
        };
        let auth = with
            .get("authentication")
            .map(|auth| authentication(self, auth, &child(pointer, "authentication"), scope))
            .transpose()?;
        let call = OpenApiCall {
            source: DocSource::Bundled,
            operation_id,
            parameters,
            auth,
            output: output_format(with, pointer)?,
            redirect: redirect(with, pointer)?,
            operation: OnceLock::new(),
        };
        if uri.starts_with("http://") || uri.starts_with("https://") {
            let url = parse_url(uri).map_err(|message| Invalid::new(&endpoint_at, message))?;
            return Ok(OpenApiCall {
                source: DocSource::Url {
                    url,
                    auth: doc_auth,
                },
                ..call
            });
        }
        let operation = self.bundled_operation(uri, &call.operation_id, &endpoint_at)?;
        let _ = call.operation.set(Arc::new(operation));
        Ok(call)
    }

    /// Reads a bundled OpenAPI document (relative to the workflow file) and finds the operation.
    fn bundled_operation(
        &self,
        uri: &str,
        operation_id: &str,
        pointer: &str,
    ) -> Result<Operation, Invalid> {
        let relative = uri.strip_prefix("file://").unwrap_or(uri);
        let dir = self.path.parent().unwrap_or(std::path::Path::new("."));
        let path = dir.join(relative);
        let format = super::Format::of(&path).ok_or_else(|| {
            Invalid::new(
                pointer,
                format!("`{uri}`: a bundled OpenAPI document must be a .json, .yaml or .yml file"),
            )
        })?;
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Invalid::new(
                pointer,
                format!("cannot read the OpenAPI document {} ({e}); bundle it next to the workflow, or give an http(s) URL", path.display()),
            )
        })?;
        let doc = format
            .parse(&text)
            .map_err(|message| Invalid::new(pointer, format!("{}: {message}", path.display())))?;
        Operation::resolve(&doc, None, operation_id)
            .map_err(|message| Invalid::new(pointer, format!("{}: {message}", path.display())))
    }

    /// `emit: { event: { with: { source, type, … } } }`.
    pub(super) fn emit(
        &self,
        value: &Value,
        pointer: &str,
        scope: &Scope,
    ) -> Result<Emit, Invalid> {
        let fields = map(value, pointer, "`emit`")?;
        check_fields(fields, pointer, "`emit`", &["event"])?;
        let event_at = child(pointer, "event");
        let event = map(required(fields, pointer, "event")?, &event_at, "`event`")?;
        check_fields(event, &event_at, "`event`", &["with"])?;
        let with_at = child(&event_at, "with");
        let with = map(required(event, &event_at, "with")?, &with_at, "`with`")?;
        for attribute in ["source", "type"] {
            match required(with, &with_at, attribute)? {
                Value::String(text) if !text.is_empty() => {}
                other => {
                    return Err(Invalid::new(
                        &child(&with_at, attribute),
                        format!("the event's `{attribute}` must be a non-empty string or a runtime expression; found {}", describe(other)),
                    ))
                }
            }
        }
        if let Some(Value::String(source)) = with.get("source") {
            if strip_expression(source).is_none()
                && !source.contains(':')
                && !source.starts_with('/')
            {
                return Err(Invalid::new(
                    &child(&with_at, "source"),
                    format!("the event's `source` `{source}` is not a URI reference; write e.g. https://example.com/orders or /orders"),
                ));
            }
        }
        Ok(Emit {
            attributes: self.template(
                &Value::Object(with.clone()),
                Position::TaskDefinition,
                scope,
                &with_at,
            )?,
        })
    }

    /// `run: { workflow: { namespace, name, version, input } }` (awaited).
    pub(super) fn run(
        &self,
        fields: &Map<String, Value>,
        pointer: &str,
        scope: &Scope,
    ) -> Result<RunWorkflow, Invalid> {
        if let Some(value) = fields.get("await") {
            if value != &Value::Bool(true) {
                return Err(Invalid::new(
                    &child(pointer, "await"),
                    "`await: false` would leave the sub-workflow running after this execution ends, which a stateless invocation cannot do; remove `await`",
                ));
            }
        }
        if fields.contains_key("return") {
            return Err(Invalid::new(
                &child(pointer, "return"),
                "`return` applies to container, shell and script processes; a sub-workflow's output is the task's output",
            ));
        }
        let run_at = child(pointer, "run");
        let run = map(required(fields, pointer, "run")?, &run_at, "`run`")?;
        check_fields(run, &run_at, "`run`", &["workflow"])?;
        let at = child(&run_at, "workflow");
        let target = map(required(run, &run_at, "workflow")?, &at, "`workflow`")?;
        check_fields(
            target,
            &at,
            "`workflow`",
            &["namespace", "name", "version", "input"],
        )?;
        let namespace = required_str(target, &at, "namespace", "mozaiks")?.to_owned();
        let name = required_str(target, &at, "name", "hello")?.to_owned();
        let version = match target.get("version") {
            None => None,
            Some(Value::String(version)) if version == "latest" => None,
            Some(Value::String(version)) => Some(version.clone()),
            Some(other) => {
                return Err(Invalid::new(
                    &child(&at, "version"),
                    format!(
                        "`version` must be a string (a version, or `latest`); found {} — quote it",
                        describe(other)
                    ),
                ))
            }
        };
        let input = target
            .get("input")
            .map(|input| {
                self.template(input, Position::TaskDefinition, scope, &child(&at, "input"))
            })
            .transpose()?;
        let link = Arc::new(SubflowLink {
            namespace,
            name,
            version,
            pointer: at,
            target: OnceLock::new(),
        });
        self.subflows.borrow_mut().push(link.clone());
        Ok(RunWorkflow { link, input })
    }
}

/// `output`: `raw`, `content` (default) or `response`.
fn output_format(with: &Map<String, Value>, pointer: &str) -> Result<OutputFormat, Invalid> {
    match with.get("output") {
        None => Ok(OutputFormat::Content),
        Some(value) => value.as_str().and_then(OutputFormat::parse).ok_or_else(|| {
            Invalid::new(
                &child(pointer, "output"),
                "`output` must be `content` (the default), `response` or `raw`",
            )
        }),
    }
}

/// `redirect`: a boolean, default false.
fn redirect(with: &Map<String, Value>, pointer: &str) -> Result<bool, Invalid> {
    match with.get("redirect") {
        None => Ok(false),
        Some(Value::Bool(redirect)) => Ok(*redirect),
        Some(other) => Err(Invalid::new(
            &child(pointer, "redirect"),
            format!(
                "`redirect` must be true or false; found {}",
                describe(other)
            ),
        )),
    }
}

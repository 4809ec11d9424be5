//! `use`: the reusable components of a workflow — secrets, authentications, errors, retry
//! policies, timeouts and functions — compiled once and shared by the tasks that name them.
//! `catalogs` and `extensions` are rejected: catalogs are fetched from elsewhere, and
//! extensions are not supported by this runtime.

use super::{check_fields, child, describe, map, required, Invalid, Loader};
use crate::duration::DurationSpec;
use crate::expr::{Arg, Position, Scope, Template};
use crate::http::Auth;
use crate::model::{Backoff, ErrorSpec, RetryPolicy, Task};
use crate::value::{from_json_ref, string};
use jaq_json::Val;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A compiled component and whether its expressions read `$task`.
type Entry<T> = (Arc<T>, bool);

/// The compiled `use` section (functions are compiled afterwards, see [`functions`]).
#[derive(Default)]
pub(crate) struct Components {
    pub(crate) authentications: BTreeMap<String, Entry<Auth>>,
    pub(crate) errors: BTreeMap<String, Entry<ErrorSpec>>,
    pub(crate) retries: BTreeMap<String, Entry<RetryPolicy>>,
    pub(crate) timeouts: BTreeMap<String, Entry<DurationSpec>>,
    /// The names of `use.functions`, in order (a `call` names one).
    pub(crate) functions: Vec<String>,
    /// The declared secrets' values (for secret-based authentication). Never logged.
    pub(crate) secrets: BTreeMap<String, Value>,
}

/// The names of a component map, for "there is no … named" messages.
pub(crate) fn names<T>(entries: &BTreeMap<String, T>) -> String {
    if entries.is_empty() {
        "none is defined".into()
    } else {
        let names: Vec<&str> = entries.keys().map(String::as_str).collect();
        format!("defined: {}", names.join(", "))
    }
}

/// Compiles `use` (all but `functions`); returns the components and `$secrets`.
pub(crate) fn compile(loader: &Loader<'_>, value: &Value) -> Result<(Components, Val), Invalid> {
    let fields = map(value, "/use", "`use`")?;
    check_fields(
        fields,
        "/use",
        "`use`",
        &[
            "authentications",
            "catalogs",
            "errors",
            "extensions",
            "functions",
            "retries",
            "secrets",
            "timeouts",
        ],
    )?;
    if fields.contains_key("catalogs") {
        return Err(Invalid::new(
            "/use/catalogs",
            "resource catalogs are not supported: this runtime loads everything at init from the bundle, without network access; copy the functions you need into `use.functions`",
        ));
    }
    if fields.contains_key("extensions") {
        return Err(Invalid::new(
            "/use/extensions",
            "extensions are not supported by this runtime; call the tasks explicitly instead",
        ));
    }
    let mut components = Components::default();
    let secrets = secrets(loader, fields.get("secrets"))?;
    let standalone = Scope::default();
    let entries = |field: &str| -> Result<Vec<(&String, &Value, String)>, Invalid> {
        match fields.get(field) {
            None => Ok(Vec::new()),
            Some(value) => {
                let at = child("/use", field);
                Ok(map(value, &at, &format!("`use.{field}`"))?
                    .iter()
                    .map(|(name, value)| (name, value, child(&at, name)))
                    .collect())
            }
        }
    };
    for (name, value, at) in entries("authentications")? {
        let auth = policy(loader, value, &at, &standalone, &secrets, false)?;
        let uses_task = auth_uses_task(&auth);
        components
            .authentications
            .insert(name.clone(), (Arc::new(auth), uses_task));
    }
    for (name, value, at) in entries("errors")? {
        let error = error(loader, value, &at, &standalone)?;
        let uses_task = [&error.type_, &error.status]
            .into_iter()
            .chain(
                [&error.title, &error.detail, &error.instance]
                    .into_iter()
                    .flatten(),
            )
            .any(|t| t.uses(Arg::Task));
        components
            .errors
            .insert(name.clone(), (Arc::new(error), uses_task));
    }
    let retry_scope = Scope::default().with(&["error"]);
    for (name, value, at) in entries("retries")? {
        let before = loader.uses_task.replace(false);
        let policy = retry(loader, value, &at, &retry_scope, true)?;
        let uses_task = loader.uses_task.replace(before);
        components
            .retries
            .insert(name.clone(), (Arc::new(policy), uses_task));
    }
    for (name, value, at) in entries("timeouts")? {
        let before = loader.uses_task.replace(false);
        let duration = timeout(loader, value, &at, Position::TaskDefinition)?;
        let uses_task = loader.uses_task.replace(before);
        components
            .timeouts
            .insert(name.clone(), (Arc::new(duration), uses_task));
    }
    components.secrets = secrets.clone();
    components.functions = entries("functions")?
        .into_iter()
        .map(|(name, _, _)| name.clone())
        .collect();
    let secrets = Val::obj(
        secrets
            .iter()
            .map(|(name, value)| (string(name), from_json_ref(value)))
            .collect(),
    );
    Ok((components, secrets))
}

/// Compiles `use.functions` (after [`compile`], so that functions can use the components and
/// call each other).
pub(crate) fn functions(
    loader: &Loader<'_>,
    value: Option<&Value>,
) -> Result<Box<[Task]>, Invalid> {
    let Some(functions) = value
        .and_then(Value::as_object)
        .and_then(|fields| fields.get("functions"))
        .and_then(Value::as_object)
    else {
        return Ok(Box::new([]));
    };
    functions
        .iter()
        .map(|(name, task)| {
            let at = child("/use/functions", name);
            loader.task(name, task, &at, &[], &Scope::default())
        })
        .collect()
}

/// `use.secrets`: each declared secret, looked up in the configured source.
fn secrets(loader: &Loader<'_>, value: Option<&Value>) -> Result<BTreeMap<String, Value>, Invalid> {
    let mut secrets = BTreeMap::new();
    let Some(value) = value else {
        return Ok(secrets);
    };
    let Value::Array(names) = value else {
        return Err(Invalid::new(
            "/use/secrets",
            format!(
                "`secrets` must be a list of secret names; found {}",
                describe(value)
            ),
        ));
    };
    for (index, name) in names.iter().enumerate() {
        let at = child("/use/secrets", &index.to_string());
        let Value::String(name) = name else {
            return Err(Invalid::new(&at, "a secret name must be a string"));
        };
        let value = loader
            .options
            .secrets
            .lookup(name)
            .map_err(|message| Invalid::new(&at, message))?;
        secrets.insert(name.clone(), value);
    }
    Ok(secrets)
}

/// An error definition: `type` and `status` required; `title`, `detail`, `instance` optional;
/// each a literal or a runtime expression.
pub(crate) fn error(
    loader: &Loader<'_>,
    value: &Value,
    pointer: &str,
    scope: &Scope,
) -> Result<ErrorSpec, Invalid> {
    let fields = map(value, pointer, "an error")?;
    check_fields(
        fields,
        pointer,
        "the error",
        &["type", "status", "title", "detail", "instance"],
    )?;
    let template = |field: &str, value: &Value| {
        loader.template(
            value,
            Position::TaskDefinition,
            scope,
            &child(pointer, field),
        )
    };
    let type_ = required(fields, pointer, "type")?;
    if !type_.is_string() {
        return Err(Invalid::new(
            &child(pointer, "type"),
            format!("`type` must be a URI such as https://serverlessworkflow.io/spec/1.0.0/errors/runtime, or an expression; found {}", describe(type_)),
        ));
    }
    let status = required(fields, pointer, "status")?;
    let status_ok = status.as_u64().is_some_and(|s| (100..=999).contains(&s))
        || status
            .as_str()
            .is_some_and(|s| crate::expr::strip_expression(s).is_some());
    if !status_ok {
        return Err(Invalid::new(
            &child(pointer, "status"),
            "`status` must be a status code (an integer from 100 to 999) or a runtime expression",
        ));
    }
    let optional = |field: &str| -> Result<Option<Template>, Invalid> {
        match fields.get(field) {
            None => Ok(None),
            Some(value @ Value::String(_)) => Ok(Some(template(field, value)?)),
            Some(other) => Err(Invalid::new(
                &child(pointer, field),
                format!(
                    "`{field}` must be a string or a runtime expression; found {}",
                    describe(other)
                ),
            )),
        }
    };
    Ok(ErrorSpec {
        type_: template("type", type_)?,
        status: template("status", status)?,
        title: optional("title")?,
        detail: optional("detail")?,
        instance: optional("instance")?,
    })
}

/// A retry policy. `standalone` policies (`use.retries`) see only `$error` in their expressions.
pub(crate) fn retry(
    loader: &Loader<'_>,
    value: &Value,
    pointer: &str,
    scope: &Scope,
    standalone: bool,
) -> Result<RetryPolicy, Invalid> {
    let fields = map(value, pointer, "a retry policy")?;
    check_fields(
        fields,
        pointer,
        "the retry policy",
        &["when", "exceptWhen", "delay", "backoff", "limit", "jitter"],
    )?;
    let condition = |field: &str| {
        fields
            .get(field)
            .map(|value| {
                loader.expr_field(
                    value,
                    Position::TaskDefinition,
                    scope,
                    &child(pointer, field),
                    &format!("`{field}`"),
                )
            })
            .transpose()
    };
    let duration =
        |value: &Value, at: &str| loader.duration(value, Position::TaskDefinition, scope, at);
    let delay = fields
        .get("delay")
        .map(|value| duration(value, &child(pointer, "delay")))
        .transpose()?;
    let backoff = match fields.get("backoff") {
        None => Backoff::Constant,
        Some(value) => {
            let at = child(pointer, "backoff");
            let backoff = map(value, &at, "`backoff`")?;
            check_fields(
                backoff,
                &at,
                "`backoff`",
                &["constant", "linear", "exponential"],
            )?;
            let kinds: Vec<&String> = backoff.keys().collect();
            match kinds.as_slice() {
                [kind] => match kind.as_str() {
                    "constant" => Backoff::Constant,
                    "linear" => Backoff::Linear,
                    _ => Backoff::Exponential,
                },
                _ => {
                    return Err(Invalid::new(
                        &at,
                        "`backoff` must set exactly one of `constant`, `linear`, `exponential` (e.g. `exponential: {}`)",
                    ))
                }
            }
        }
    };
    let mut max_attempts = None;
    let mut attempt_duration = None;
    let mut total_duration = None;
    if let Some(value) = fields.get("limit") {
        let at = child(pointer, "limit");
        let limit = map(value, &at, "`limit`")?;
        check_fields(limit, &at, "`limit`", &["attempt", "duration"])?;
        if let Some(value) = limit.get("attempt") {
            let attempt_at = child(&at, "attempt");
            let attempt = map(value, &attempt_at, "`attempt`")?;
            check_fields(attempt, &attempt_at, "`attempt`", &["count", "duration"])?;
            if let Some(count) = attempt.get("count") {
                max_attempts = Some(count.as_u64().ok_or_else(|| {
                    Invalid::new(
                        &child(&attempt_at, "count"),
                        "`count` must be a non-negative integer",
                    )
                })?);
            }
            attempt_duration = attempt
                .get("duration")
                .map(|value| duration(value, &child(&attempt_at, "duration")))
                .transpose()?;
        }
        total_duration = limit
            .get("duration")
            .map(|value| duration(value, &child(&at, "duration")))
            .transpose()?;
    }
    let jitter = match fields.get("jitter") {
        None => None,
        Some(value) => {
            let at = child(pointer, "jitter");
            let jitter = map(value, &at, "`jitter`")?;
            check_fields(jitter, &at, "`jitter`", &["from", "to"])?;
            Some((
                duration(required(jitter, &at, "from")?, &child(&at, "from"))?,
                duration(required(jitter, &at, "to")?, &child(&at, "to"))?,
            ))
        }
    };
    Ok(RetryPolicy {
        when: condition("when")?,
        except_when: condition("exceptWhen")?,
        delay,
        backoff,
        max_attempts,
        attempt_duration,
        total_duration,
        jitter,
        standalone,
    })
}

/// A timeout definition: `{ after: duration }`.
pub(crate) fn timeout(
    loader: &Loader<'_>,
    value: &Value,
    pointer: &str,
    position: Position,
) -> Result<DurationSpec, Invalid> {
    let fields = map(value, pointer, "a timeout")?;
    check_fields(fields, pointer, "the timeout", &["after"])?;
    loader.duration(
        required(fields, pointer, "after")?,
        position,
        &Scope::default(),
        &child(pointer, "after"),
    )
}

/// An endpoint's `authentication`: `{ use: <name> }` or an inline policy.
pub(crate) fn authentication(
    loader: &Loader<'_>,
    value: &Value,
    pointer: &str,
    scope: &Scope,
) -> Result<Arc<Auth>, Invalid> {
    let fields = map(value, pointer, "`authentication`")?;
    if let Some(name) = fields.get("use") {
        check_fields(fields, pointer, "`authentication`", &["use"])?;
        let name = name.as_str().unwrap_or_default();
        let (auth, uses_task) = loader.components.authentications.get(name).ok_or_else(|| {
            Invalid::new(
                &child(pointer, "use"),
                format!(
                    "there is no authentication named `{name}` in `use.authentications` ({})",
                    names(&loader.components.authentications)
                ),
            )
        })?;
        loader.note(*uses_task);
        return Ok(auth.clone());
    }
    let auth = policy(
        loader,
        value,
        pointer,
        scope,
        &loader.components.secrets,
        true,
    )?;
    Ok(Arc::new(auth))
}

/// A `basic` or `bearer` policy, inline or from a secret (`{ basic: { use: <secret> } }`).
fn policy(
    loader: &Loader<'_>,
    value: &Value,
    pointer: &str,
    scope: &Scope,
    secrets: &BTreeMap<String, Value>,
    inline: bool,
) -> Result<Auth, Invalid> {
    let fields = map(value, pointer, "an authentication policy")?;
    let schemes = ["basic", "bearer", "digest", "oauth2", "oidc", "certificate"];
    let allowed: &[&str] = if inline {
        &[
            "basic",
            "bearer",
            "digest",
            "oauth2",
            "oidc",
            "certificate",
            "use",
        ]
    } else {
        &schemes
    };
    check_fields(fields, pointer, "the authentication policy", allowed)?;
    let (scheme, body) = match fields.iter().next() {
        Some((scheme, body)) if fields.len() == 1 => (scheme.as_str(), body),
        _ => {
            return Err(Invalid::new(
                pointer,
                "an authentication policy sets exactly one scheme: `basic` or `bearer`",
            ))
        }
    };
    let at = child(pointer, scheme);
    let template = |value: &Value, field: &str| {
        loader.template(value, Position::TaskDefinition, scope, &child(&at, field))
    };
    match scheme {
        "basic" | "bearer" => {}
        other => {
            return Err(Invalid::new(
                &at,
                format!("`{other}` authentication is not supported by this runtime; use `basic` or `bearer` (with a secret)"),
            ))
        }
    }
    if scheme == "bearer" {
        if let Value::String(_) = body {
            return Ok(Auth::Bearer {
                token: template(body, "")?,
            });
        }
    }
    let fields = map(body, &at, &format!("`{scheme}`"))?;
    if let Some(secret) = fields.get("use") {
        check_fields(fields, &at, &format!("`{scheme}`"), &["use"])?;
        let name = secret.as_str().unwrap_or_default();
        let value = secrets.get(name).ok_or_else(|| {
            Invalid::new(
                &child(&at, "use"),
                format!("secret `{name}` is not declared: add it to `use.secrets`"),
            )
        })?;
        let field = |key: &str| -> Result<Template, Invalid> {
            match value.get(key) {
                Some(Value::String(text)) => Ok(Template::Const(string(text))),
                _ => Err(Invalid::new(
                    &child(&at, "use"),
                    format!("secret `{name}` must be a JSON object with a string `{key}` to be used for `{scheme}` authentication"),
                )),
            }
        };
        return Ok(match scheme {
            "basic" => Auth::Basic {
                username: field("username")?,
                password: field("password")?,
            },
            _ => Auth::Bearer {
                token: field("token")?,
            },
        });
    }
    match scheme {
        "basic" => {
            check_fields(fields, &at, "`basic`", &["username", "password"])?;
            Ok(Auth::Basic {
                username: template(required(fields, &at, "username")?, "username")?,
                password: template(required(fields, &at, "password")?, "password")?,
            })
        }
        _ => {
            check_fields(fields, &at, "`bearer`", &["token"])?;
            Ok(Auth::Bearer {
                token: template(required(fields, &at, "token")?, "token")?,
            })
        }
    }
}

fn auth_uses_task(auth: &Auth) -> bool {
    match auth {
        Auth::Basic { username, password } => username.uses(Arg::Task) || password.uses(Arg::Task),
        Auth::Bearer { token } => token.uses(Arg::Task),
    }
}

//! The SAM template (`template.yaml`): `cfn-lint` clean, and the properties the contract and
//! the billing pipeline rely on, checked on the template as CloudFormation reads it.
//!
//! Needs `cfn-lint` (and a `python3` that can import it) on PATH: `pip install cfn-lint`.
//! Without them the tests fail with that hint; they never skip.

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::{json, Value};

const TEMPLATE: &str = "template.yaml";
const INSTALL_HINT: &str = "install it with `pip install cfn-lint` (as `.ci/run` does)";

/// Runs `program` with `args` in the crate root; a missing program fails with the install hint.
fn run(program: &str, args: &[&str]) -> Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    match Command::new(program).args(args).current_dir(root).output() {
        Ok(output) => output,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            panic!("`{program}` is not on PATH: {INSTALL_HINT}")
        }
        Err(e) => panic!("cannot run `{program}` in {}: {e}", root.display()),
    }
}

/// The template as JSON, short-form tags (`!Ref`, `!GetAtt`, …) in their long form, read once
/// by cfn-lint's own YAML loader (the one CloudFormation's syntax needs).
fn template() -> &'static Value {
    static TEMPLATE_JSON: OnceLock<Value> = OnceLock::new();
    TEMPLATE_JSON.get_or_init(load_template)
}

/// Runs cfn-lint's loader on the template and parses what it prints.
fn load_template() -> Value {
    let script = "import json, sys\n\
                  from cfnlint.decode import cfn_yaml\n\
                  json.dump(cfn_yaml.load(sys.argv[1]), sys.stdout)\n";
    let output = run("python3", &["-c", script, TEMPLATE]);
    assert!(
        output.status.success(),
        "python3 could not load {TEMPLATE} with cfn-lint's loader; if it cannot import \
         `cfnlint`, run `python3 -m pip install cfn-lint`:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    match serde_json::from_slice(&output.stdout) {
        Ok(value) => value,
        Err(e) => panic!("cfn-lint's loader printed something that is not JSON: {e}"),
    }
}

/// The resource `name` of the template; fails naming it when it is missing.
fn resource<'a>(template: &'a Value, name: &str) -> &'a Value {
    let resource = &template["Resources"][name];
    assert!(resource.is_object(), "{TEMPLATE} has no resource {name}");
    resource
}

/// Names of the resources of `type_`, sorted.
fn resources_of_type(template: &Value, type_: &str) -> Vec<String> {
    template["Resources"]
        .as_object()
        .map(|resources| {
            resources
                .iter()
                .filter(|(_, r)| r["Type"] == type_)
                .map(|(name, _)| name.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// A value that IAM and CloudFormation accept either alone or in a list, as a list.
fn one_or_many(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// `{"Fn::GetAtt": [name, "Arn"]}`.
fn arn_of(name: &str) -> Value {
    json!({ "Fn::GetAtt": [name, "Arn"] })
}

/// `{"Ref": name}`.
fn ref_to(name: &str) -> Value {
    json!({ "Ref": name })
}

/// The logical name in `{"Fn::GetAtt": [name, "Arn"]}`, if `value` is one.
fn arn_target(value: &Value) -> Option<&str> {
    match value["Fn::GetAtt"].as_array().map(Vec::as_slice) {
        Some([name, attribute]) if attribute == "Arn" => name.as_str(),
        _ => None,
    }
}

#[test]
fn cfn_lint_reports_nothing() {
    let output = run("cfn-lint", &["--format", "parseable", TEMPLATE]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.trim().is_empty(),
        "cfn-lint is not clean on {TEMPLATE} ({}):\n{stdout}{stderr}",
        output.status
    );
}

#[test]
fn function_may_only_put_usage_events_on_the_usage_bus_and_write_its_logs() {
    let template = template();
    let function = resource(template, "MozaiksRuntimeFunction");
    let properties = &function["Properties"];
    assert_eq!(properties["Role"], arn_of("MozaiksRuntimeRole"));
    assert!(
        properties.get("Policies").is_none(),
        "with an explicit Role, SAM Policies would be ignored or widen it"
    );

    // The bus and log group the role grants are the ones the function uses.
    let variables = &properties["Environment"]["Variables"];
    assert_eq!(
        variables["MOZAIKS_USAGE_EVENT_BUS"],
        ref_to("UsageEventBus")
    );
    assert_eq!(variables["MOZAIKS_USAGE_SOURCE"], ref_to("UsageSource"));
    assert_eq!(
        properties["LoggingConfig"]["LogGroup"],
        ref_to("MozaiksRuntimeLogGroup")
    );

    // No other identity in the stack grants anything (the tool host's role, when it is
    // deployed, has a test of its own below).
    assert_eq!(
        resources_of_type(template, "AWS::IAM::Role"),
        ["MozaiksRuntimeRole", "ToolHostRole"]
    );
    for type_ in ["AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"] {
        assert!(resources_of_type(template, type_).is_empty(), "{type_}");
    }

    let role = &resource(template, "MozaiksRuntimeRole")["Properties"];
    assert!(
        role.get("ManagedPolicyArns").is_none(),
        "managed policies grant more than the function needs"
    );
    let trust = one_or_many(&role["AssumeRolePolicyDocument"]["Statement"]);
    assert_eq!(trust.len(), 1);
    assert_eq!(
        trust[0]["Principal"],
        json!({ "Service": "lambda.amazonaws.com" })
    );

    let mut grants = BTreeSet::new();
    for policy in one_or_many(&role["Policies"]) {
        // Bedrock access exists only when BedrockModelArns names models: `Fn::If`. The
        // workflow event bus's conditional grant has its own test below.
        let policy = match policy["Fn::If"].as_array().map(Vec::as_slice) {
            Some([condition, _, _])
                if condition == "HasWorkflowEventBus" || condition == "DeploysToolHost" =>
            {
                continue
            }
            Some([condition, granted, otherwise]) => {
                assert_eq!(condition, "HasBedrockModels", "{policy}");
                assert_eq!(otherwise, &ref_to("AWS::NoValue"), "{policy}");
                granted
            }
            _ => policy,
        };
        assert!(policy["PolicyDocument"].is_object(), "{policy}");
        for statement in one_or_many(&policy["PolicyDocument"]["Statement"]) {
            assert_eq!(statement["Effect"], "Allow", "{statement}");
            for key in ["NotAction", "NotResource"] {
                assert!(statement.get(key).is_none(), "{key} in {statement}");
            }
            for action in one_or_many(&statement["Action"]) {
                for resource in one_or_many(&statement["Resource"]) {
                    grants.insert((action.to_string(), resource.to_string()));
                }
            }
            if statement["Action"] == "events:PutEvents" {
                assert_eq!(
                    statement["Condition"],
                    json!({ "StringEquals": { "events:source": { "Ref": "UsageSource" } } }),
                    "PutEvents must be limited to the usage source"
                );
            }
        }
    }
    let log_group = arn_of("MozaiksRuntimeLogGroup").to_string();
    let expected: BTreeSet<(String, String)> = [
        (
            "\"bedrock:InvokeModel\"",
            ref_to("BedrockModelArns").to_string(),
        ),
        ("\"events:PutEvents\"", arn_of("UsageEventBus").to_string()),
        ("\"logs:CreateLogStream\"", log_group.clone()),
        ("\"logs:PutLogEvents\"", log_group),
    ]
    .into_iter()
    .map(|(action, resource)| (action.to_owned(), resource))
    .collect();
    assert_eq!(grants, expected);
    // By default no model is named, so the function gets no Bedrock access.
    assert_eq!(template["Parameters"]["BedrockModelArns"]["Default"], "");
    assert_eq!(
        template["Conditions"]["HasBedrockModels"],
        json!({ "Fn::Not": [{ "Fn::Equals": [{ "Fn::Join": [",", { "Ref": "BedrockModelArns" }] }, ""] }] })
    );
}

#[test]
fn workflow_events_go_to_an_optional_bus_the_function_may_put_on_and_no_other() {
    let template = template();
    let parameters = &template["Parameters"];
    assert_eq!(parameters["CreateWorkflowEventBus"]["Default"], "false");
    assert_eq!(parameters["WorkflowEventBusName"]["Default"], "");
    assert!(
        template["Rules"]["OneWorkflowEventBus"].is_object(),
        "creating a bus and naming one must not both be allowed"
    );

    // The bus, only when asked for.
    let bus = resource(template, "WorkflowEventBus");
    assert_eq!(bus["Type"], "AWS::Events::EventBus");
    assert_eq!(bus["Condition"], "CreatesWorkflowEventBus");

    // The variable: the created bus, or the named one, or unset.
    let variables =
        &resource(template, "MozaiksRuntimeFunction")["Properties"]["Environment"]["Variables"];
    assert_eq!(
        variables["MOZAIKS_WORKFLOW_EVENT_BUS"],
        json!({ "Fn::If": [
            "CreatesWorkflowEventBus",
            { "Ref": "WorkflowEventBus" },
            { "Fn::If": ["NamesWorkflowEventBus", { "Ref": "WorkflowEventBusName" }, { "Ref": "AWS::NoValue" }] }
        ] })
    );

    // The role: PutEvents on exactly that bus, only when there is one.
    let role = &resource(template, "MozaiksRuntimeRole")["Properties"];
    let conditional: Vec<&Value> = one_or_many(&role["Policies"])
        .into_iter()
        .filter(|p| p["Fn::If"][0] == "HasWorkflowEventBus")
        .collect();
    assert_eq!(
        conditional.len(),
        1,
        "one policy for the workflow event bus: {conditional:?}"
    );
    let branches = conditional[0]["Fn::If"].as_array().expect("Fn::If list");
    assert_eq!(branches[0], "HasWorkflowEventBus");
    assert_eq!(branches[2], ref_to("AWS::NoValue"));
    let statements = one_or_many(&branches[1]["PolicyDocument"]["Statement"]);
    assert_eq!(statements.len(), 1, "{statements:?}");
    let statement = statements[0];
    assert_eq!(statement["Effect"], "Allow");
    assert_eq!(statement["Action"], "events:PutEvents");
    assert_eq!(
        statement["Resource"],
        json!({ "Fn::If": [
            "CreatesWorkflowEventBus",
            arn_of("WorkflowEventBus"),
            { "Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${WorkflowEventBusName}" }
        ] })
    );
    let conditions = &template["Conditions"];
    assert_eq!(
        conditions["HasWorkflowEventBus"],
        json!({ "Fn::Or": [{ "Condition": "CreatesWorkflowEventBus" }, { "Condition": "NamesWorkflowEventBus" }] })
    );
}

#[test]
fn usage_rule_delivers_to_the_billing_queue_with_dead_letter_queues() {
    let template = template();
    let rule = &resource(template, "UsageToBillingRule")["Properties"];
    assert_eq!(rule["EventBusName"], ref_to("UsageEventBus"));
    assert_eq!(rule["State"], "ENABLED");
    assert_eq!(
        rule["EventPattern"],
        json!({
            "source": [{ "Ref": "UsageSource" }],
            "detail-type": [{ "prefix": "mozaiks.usage." }]
        })
    );
    assert_eq!(
        template["Parameters"]["UsageSource"]["Default"],
        "mozaiks.runtime"
    );

    let targets = one_or_many(&rule["Targets"]);
    assert_eq!(targets.len(), 1, "one target: the billing queue");
    let target = targets[0];
    assert_eq!(target["Arn"], arn_of("BillingQueue"));
    let delivery_dlq = arn_target(&target["DeadLetterConfig"]["Arn"])
        .unwrap_or_else(|| panic!("the rule target has no dead-letter queue: {target}"));
    let billing = &resource(template, "BillingQueue")["Properties"];
    let billing_dlq = arn_target(&billing["RedrivePolicy"]["deadLetterTargetArn"])
        .unwrap_or_else(|| panic!("BillingQueue has no redrive policy: {billing}"));

    let queues = resources_of_type(template, "AWS::SQS::Queue");
    for name in [delivery_dlq, billing_dlq] {
        assert!(queues.iter().any(|q| q == name), "{name} is not a queue");
        assert_ne!(name, "BillingQueue");
    }
    for name in &queues {
        assert_eq!(
            resource(template, name)["Properties"]["SqsManagedSseEnabled"],
            true,
            "{name} is not encrypted"
        );
    }

    // EventBridge may send to the billing queue and to the target's dead-letter queue, and
    // only on behalf of this rule.
    let policies = resources_of_type(template, "AWS::SQS::QueuePolicy");
    for queue in ["BillingQueue", delivery_dlq] {
        let statements: Vec<&Value> = policies
            .iter()
            .map(|name| &resource(template, name)["Properties"])
            .filter(|policy| one_or_many(&policy["Queues"]).contains(&&ref_to(queue)))
            .flat_map(|policy| one_or_many(&policy["PolicyDocument"]["Statement"]))
            .collect();
        assert!(!statements.is_empty(), "no queue policy on {queue}");
        for statement in statements {
            assert_eq!(statement["Effect"], "Allow", "{statement}");
            assert_eq!(
                statement["Principal"],
                json!({ "Service": "events.amazonaws.com" })
            );
            assert_eq!(statement["Action"], "sqs:SendMessage");
            assert_eq!(statement["Resource"], arn_of(queue));
            assert_eq!(
                statement["Condition"],
                json!({ "ArnEquals": { "aws:SourceArn": arn_of("UsageToBillingRule") } })
            );
        }
    }
}

#[test]
fn function_is_configured_as_the_contract_says() {
    let template = template();
    let function = resource(template, "MozaiksRuntimeFunction");
    // `make build-MozaiksRuntimeFunction`: cargo-lambda's bootstrap plus the workflows/.
    assert_eq!(function["Metadata"]["BuildMethod"], "makefile");
    let makefile = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Makefile"))
        .expect("Makefile");
    assert!(makefile.contains("build-MozaiksRuntimeFunction:"));
    let properties = &function["Properties"];
    assert_eq!(properties["Runtime"], "provided.al2023");
    assert_eq!(properties["Architectures"], json!(["arm64"]));
    assert_eq!(properties["Handler"], "bootstrap");
    assert_eq!(properties["LoggingConfig"]["LogFormat"], "JSON");

    let variables = &properties["Environment"]["Variables"];
    for name in [
        "MOZAIKS_JWT_ISSUER",
        "MOZAIKS_JWT_AUDIENCE",
        "MOZAIKS_JWT_JWKS",
        "MOZAIKS_JWT_HS256_SECRET",
        "MOZAIKS_JWT_REQUIRED_SCOPE",
        "MOZAIKS_JWT_TOKEN_USE",
        "MOZAIKS_CONTINUATION_KEY",
        "MOZAIKS_USAGE_EVENT_BUS",
        "MOZAIKS_USAGE_SOURCE",
    ] {
        assert!(variables.get(name).is_some(), "{name} is not set");
    }

    // Secrets come only from Secrets Manager, and are left unset when not configured.
    for (variable, parameter, condition) in [
        (
            "MOZAIKS_JWT_HS256_SECRET",
            "Hs256SecretId",
            "HasHs256Secret",
        ),
        (
            "MOZAIKS_CONTINUATION_KEY",
            "ContinuationKeySecretId",
            "HasContinuationKey",
        ),
        (
            "MOZAIKS_CONTINUATION_KEYS_PREVIOUS",
            "ContinuationPreviousKeysSecretId",
            "HasContinuationPreviousKeys",
        ),
    ] {
        let reference = format!("{{{{resolve:secretsmanager:${{{parameter}}}:SecretString}}}}");
        assert_eq!(
            variables[variable],
            json!({ "Fn::If": [condition, { "Fn::Sub": reference }, { "Ref": "AWS::NoValue" }] }),
            "{variable}"
        );
    }

    // No key has a default: production names its keys (the development key is never one).
    let parameters = &template["Parameters"];
    for name in ["JwtIssuer", "JwtAudience"] {
        assert!(
            parameters[name].get("Default").is_none(),
            "{name} has a default"
        );
    }
    for name in [
        "JwtJwks",
        "Hs256SecretId",
        "ContinuationKeySecretId",
        "ContinuationPreviousKeysSecretId",
    ] {
        assert_eq!(parameters[name]["Default"], "", "{name} has a default");
    }
    assert_eq!(parameters["JwtJwks"]["NoEcho"], true);
    assert!(
        template["Rules"]["KeySourceConfigured"].is_object(),
        "a deployment without any key source must fail"
    );
    assert!(
        template["Rules"]["ContinuationKeyForPreviousKeys"].is_object(),
        "previous continuation keys without a current key must fail the deployment"
    );

    // The API routes POST /executions to the function.
    let events = &properties["Events"];
    let executions = &events["Executions"];
    assert_eq!(executions["Type"], "HttpApi");
    assert_eq!(executions["Properties"]["Method"], "POST");
    assert_eq!(executions["Properties"]["Path"], "/executions");
    assert_eq!(
        resource(template, "MozaiksHttpApi")["Type"],
        "AWS::Serverless::HttpApi"
    );
}

#[test]
fn cors_is_answered_by_the_api_for_named_origins_only() {
    let template = template();
    let parameter = &template["Parameters"]["CorsAllowedOrigins"];
    assert_eq!(parameter["Type"], "CommaDelimitedList");
    // No origin by default: a browser on another origin gets no CORS answer until one is named.
    assert_eq!(parameter["Default"], "");
    assert_eq!(
        template["Conditions"]["HasCorsOrigins"],
        json!({ "Fn::Not": [{ "Fn::Equals": [{ "Fn::Join": [",", { "Ref": "CorsAllowedOrigins" }] }, ""] }] })
    );
    // A wildcard fails the deployment.
    let rule = &template["Rules"]["NoWildcardCorsOrigin"]["Assertions"][0]["Assert"];
    assert_eq!(
        rule,
        &json!({ "Fn::Not": [{ "Fn::Contains": [{ "Ref": "CorsAllowedOrigins" }, "*"] }] })
    );
    let cors = &resource(template, "MozaiksHttpApi")["Properties"]["CorsConfiguration"]["Fn::If"];
    assert_eq!(cors[0], "HasCorsOrigins");
    assert_eq!(cors[2], json!({ "Ref": "AWS::NoValue" }));
    let config = &cors[1];
    assert_eq!(
        config["AllowOrigins"],
        json!({ "Ref": "CorsAllowedOrigins" })
    );
    assert_eq!(config["AllowMethods"], json!(["POST"]));
    assert_eq!(config["AllowCredentials"], false);
    for header in ["authorization", "content-type", "mozaiks-continuation"] {
        assert!(
            one_or_many(&config["AllowHeaders"]).contains(&&json!(header)),
            "{header}"
        );
    }
    assert_eq!(config["ExposeHeaders"], json!(["x-mozaiks-execution-id"]));
}

#[test]
fn the_optional_tool_host_is_reachable_only_by_the_runtimes_signed_calls() {
    let template = template();
    // Off by default: nothing of it exists unless DeployToolHost=true.
    assert_eq!(template["Parameters"]["DeployToolHost"]["Default"], "false");
    assert_eq!(
        template["Conditions"]["DeploysToolHost"],
        json!({ "Fn::Equals": [{ "Ref": "DeployToolHost" }, "true"] })
    );
    for name in ["ToolHostFunction", "ToolHostRole", "ToolHostLogGroup"] {
        assert_eq!(
            resource(template, name)["Condition"],
            "DeploysToolHost",
            "{name}"
        );
    }
    let host = &resource(template, "ToolHostFunction")["Properties"];
    assert_eq!(host["FunctionUrlConfig"]["AuthType"], "AWS_IAM");
    assert_eq!(host["Role"], arn_of("ToolHostRole"));
    assert_eq!(host["Runtime"], "python3.12");
    assert_eq!(host["Handler"], "run.sh");
    assert!(std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("toolhost/lambda/run.sh")
        .is_file());
    // Its role writes its logs and nothing else.
    let role = &resource(template, "ToolHostRole")["Properties"];
    let mut grants = Vec::new();
    for policy in one_or_many(&role["Policies"]) {
        for statement in one_or_many(&policy["PolicyDocument"]["Statement"]) {
            for action in one_or_many(&statement["Action"]) {
                grants.push((action.clone(), statement["Resource"].clone()));
            }
        }
    }
    assert_eq!(
        grants,
        [
            (json!("logs:CreateLogStream"), arn_of("ToolHostLogGroup")),
            (json!("logs:PutLogEvents"), arn_of("ToolHostLogGroup")),
        ]
    );
    // The runtime may invoke that Function URL, signed, and only it; it is told where and how.
    let runtime = &resource(template, "MozaiksRuntimeRole")["Properties"];
    let invoke = one_or_many(&runtime["Policies"])
        .into_iter()
        .find_map(|p| match p["Fn::If"].as_array().map(Vec::as_slice) {
            Some([condition, granted, _]) if condition == "DeploysToolHost" => {
                Some(granted.clone())
            }
            _ => None,
        })
        .expect("a conditional invoke-tool-host policy");
    let statements = one_or_many(&invoke["PolicyDocument"]["Statement"]);
    assert_eq!(statements.len(), 1);
    assert_eq!(statements[0]["Action"], "lambda:InvokeFunctionUrl");
    assert_eq!(statements[0]["Resource"], arn_of("ToolHostFunction"));
    assert_eq!(
        statements[0]["Condition"],
        json!({ "StringEquals": { "lambda:FunctionUrlAuthType": "AWS_IAM" } })
    );
    let variables =
        &resource(template, "MozaiksRuntimeFunction")["Properties"]["Environment"]["Variables"];
    assert_eq!(
        variables["MOZAIKS_TOOL_HOST_URL"]["Fn::If"][1],
        json!({ "Fn::GetAtt": ["ToolHostFunctionUrl", "FunctionUrl"] })
    );
    assert_eq!(variables["MOZAIKS_TOOL_HOST_AUTH"]["Fn::If"][1], "aws_iam");
}

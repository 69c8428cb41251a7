#!/usr/bin/env python3
"""Run the AWS SAM transform on template.yaml offline and check its output.

Exits non-zero when the transform fails or its output breaks a rule below.
Usage: .ci/sam-transform.py [template.yaml] [--print]

Needs aws-sam-translator (pip package) and PyYAML (cfn-lint's dependency).
"""
import datetime
import json
import os
import sys

try:
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse
except ImportError as e:  # a clear message, never a silent skip
    sys.exit(f"sam-transform: aws-sam-translator is not installed ({e})")


class NoManagedPolicies:
    """SAM's managed-policy loader; the offline transform needs no names."""

    def load(self):
        return {}


def dates_as_strings(v):
    """CloudFormation reads an unquoted date (Version: 2012-10-17) as a
    string; PyYAML makes it a datetime.date, which the transform rejects."""
    if isinstance(v, dict):
        return {k: dates_as_strings(x) for k, x in v.items()}
    if isinstance(v, list):
        return [dates_as_strings(x) for x in v]
    if isinstance(v, datetime.date):
        return v.isoformat()
    return v


def load(path):
    with open(path) as f:
        template = dates_as_strings(yaml_parse(f.read()))
    # sam build/package would give each function an S3 code location.
    for res in template.get("Resources", {}).values():
        if res.get("Type") == "AWS::Serverless::Function":
            res.setdefault("Properties", {})["CodeUri"] = "s3://bucket/code.zip"
    return template


def parameter_values(template, overrides):
    """The values CloudFormation hands the transform: list parameters as
    lists (an unsplit string would reach the OpenAPI body as one origin;
    aws-sam-cli#4026 shows !Ref of a CommaDelimitedList deploying)."""
    values = {}
    for name, p in template.get("Parameters", {}).items():
        v = overrides.get(name, p.get("Default"))
        if v is None:
            continue
        if p.get("Type") == "CommaDelimitedList" and isinstance(v, str):
            v = v.split(",")
        values[name] = v
    return values


def run(path, overrides):
    template = load(path)
    try:
        return transform(template, parameter_values(template, overrides), NoManagedPolicies()), []
    except Exception as e:  # InvalidDocumentException lists every cause
        return None, [str(getattr(c, "message", c)) for c in (getattr(e, "causes", None) or [e])]


# Parameter sets the transform must accept; the second checks that several
# CORS origins stay a list of origins.
CASES = [
    ({}, None),
    ({"CorsAllowOrigins": "https://a.example,https://b.example", "JwtIssuer": "https://issuer.example",
      "JwtAudience": "aud", "EnableAccessLogs": "true", "EnableWebSocketAccessLogs": "true",
      "AlarmTopicArn": "arn:aws:sns:us-east-1:123456789012:alerts"},
     ["https://a.example", "https://b.example"]),
]


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    path = args[0] if args else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "template.yaml")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    problems, first = [], None
    for overrides, origins in CASES:
        out, errs = run(path, overrides)
        problems += [f"parameters {overrides}: {e}" for e in errs]
        if out is None:
            continue
        first = first or out
        problems += [f"parameters {overrides}: {p}" for p in check(out, origins)]
    for p in problems:
        print(f"sam-transform: {p}", file=sys.stderr)
    if first is not None:
        if "--print" in argv:
            json.dump(first, sys.stdout, indent=2, default=str)
            print()
        else:
            print(f"sam-transform: {path}: {len(first['Resources'])} resources")
    return 1 if problems or first is None else 0


def check(out, want_origins):
    """Rules the transformed template must keep: policies, CORS, dates."""
    problems = []
    for rid, res in out["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::IAM::Role":
            # No managed policy beyond basic logging and X-Ray writes: the
            # DynamoDB event source's AWSLambdaDynamoDBExecutionRole grants
            # stream reads on every stream ("*").
            allowed = ("AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess")
            for arn in props.get("ManagedPolicyArns", []):
                text = json.dumps(arn)
                if not any(a in text for a in allowed):
                    problems.append(f"{rid}: managed policy {text} is wider than the function's own statements")
            for pol in props.get("Policies", []):
                doc = pol.get("PolicyDocument", {})
                if doc.get("Version") != "2012-10-17":
                    problems.append(f"{rid}: policy {pol.get('PolicyName')} has Version {doc.get('Version')!r}, want 2012-10-17")
                for st in doc.get("Statement", []):
                    resources = st.get("Resource")
                    if resources == "*" or (isinstance(resources, list) and "*" in resources):
                        problems.append(f"{rid}: policy {pol.get('PolicyName')} grants {st.get('Action')} on *")
        if res["Type"] == "AWS::ApiGatewayV2::Api" and "Body" in props:
            cors = props["Body"].get("x-amazon-apigateway-cors")
            if cors is None:
                continue
            origins = cors.get("allowOrigins")
            if not isinstance(origins, list) or not all(isinstance(o, str) for o in origins):
                problems.append(f"{rid}: CORS allowOrigins is {origins!r}, want a list of origins")
            elif want_origins is not None and origins != want_origins:
                problems.append(f"{rid}: CORS allowOrigins is {origins}, want {want_origins}")
            if "retry-after" not in [h.lower() for h in cors.get("exposeHeaders", [])]:
                problems.append(f"{rid}: CORS exposeHeaders {cors.get('exposeHeaders')} lacks retry-after")
    return problems


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

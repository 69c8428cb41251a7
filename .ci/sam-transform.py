#!/usr/bin/env python3
"""Run the AWS SAM transform on a template, offline, as CloudFormation would.

Usage: python3 .ci/sam-transform.py template.yaml

Exits non-zero, with SAM's own messages, when the transform fails; prints the
number of CloudFormation resources it produced when it succeeds. Needs the
aws-sam-translator package (import samtranslator) and PyYAML; no network and
no AWS account: the region comes from AWS_DEFAULT_REGION (us-east-1 if unset),
and managed policies resolve from the translator's bundled list.
"""

import os
import sys

try:
    import yaml
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.translator.transform import transform
except ImportError as e:
    sys.exit(f"sam-transform: {e}: install aws-sam-translator (pip install aws-sam-translator)")


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that reads CloudFormation's short-form intrinsics."""


def _intrinsic(loader, tag_suffix, node):
    name = "Ref" if tag_suffix == "Ref" else "Fn::" + tag_suffix
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if name == "Fn::GetAtt":
            # !GetAtt Res.Attr is the list form [Res, Attr].
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _intrinsic)
# CloudFormation reads an unquoted date (Version: 2012-10-17) as a string;
# PyYAML would make it a datetime.date, which the transform rejects.
_CfnLoader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)


class _NoManagedPolicies:
    """Managed-policy loader for an offline run. SAM asks it only for names
    missing from its bundled list; with {} such a name stays as written
    (CloudFormation then rejects it), and no IAM call is made."""

    def load(self):
        return {}


def main(argv):
    if len(argv) != 2:
        sys.exit("usage: sam-transform.py template.yaml")
    # The transform derives the partition from the region; without one it
    # would try to read an AWS profile.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with open(argv[1], encoding="utf-8") as f:
        template = yaml.load(f, Loader=_CfnLoader)
    # sam build replaces each local CodeUri with the S3 location it uploads
    # to; the transform accepts only that (or an inline) form.
    for name, res in (template.get("Resources") or {}).items():
        props = res.get("Properties") or {}
        if res.get("Type") == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str):
            props["CodeUri"] = f"s3://sam-transform-check/{name}.zip"
    try:
        out = transform(template, {}, _NoManagedPolicies())
    except InvalidDocumentException as e:
        for cause in e.causes:
            print(f"sam-transform: {cause.message}", file=sys.stderr)
        return 1
    print(f"sam-transform: {argv[1]}: {len(out.get('Resources', {}))} resources")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

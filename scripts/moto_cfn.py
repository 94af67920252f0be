#!/usr/bin/env python3
"""moto's server with what its CloudFormation lacks for the released template
(scripts/release_test.py deploys it there). Run with the venv's Python:

    moto_cfn.py -H 127.0.0.1 -p PORT

moto 5.2.5 lacks, for it:
- AWS::SNS::TopicPolicy, AWS::SNS::Subscription, AWS::Lambda::EventInvokeConfig:
  skipped with a warning, so the stack would list none of them. Here each is the
  API call CloudFormation makes for it (SetTopicAttributes, Subscribe,
  PutFunctionEventInvokeConfig) on moto's own backends, with moto's validation.
- a Ref to an AWS::Events::EventBus: moto gives its object, and a rule naming
  the bus fails. Here it is the bus's name, as on AWS.
- the outputs of a stack created by a change set, as `aws cloudformation
  deploy` creates one: moto keeps those of the empty template before it. Here
  executing a change set also sets the stack's template and outputs.
Nothing else of moto changes.
"""

import json
import sys

from moto import server
from moto.awslambda.models import lambda_backends
from moto.cloudformation.models import ChangeSet
from moto.core.common_models import CloudFormationModel
from moto.events.models import EventBus
from moto.sns.models import sns_backends

# AWS: "Ref returns the name of the event bus".
EventBus.physical_resource_id = property(lambda self: self.name)

_apply_change_set = ChangeSet.apply


def _apply_change_set_with_outputs(self):
    """moto applies a change set's resources but keeps the stack's outputs (and
    template) from before it: a stack created by a change set, as `aws
    cloudformation deploy` creates one, would show no outputs."""
    _apply_change_set(self)
    self.stack.template = self.template
    self.stack.template_dict = self.template_dict
    self.stack.output_map = self.stack._create_output_map()


ChangeSet.apply = _apply_change_set_with_outputs


def _function_name(reference):
    """A Lambda function ARN (possibly with a qualifier) or name → its name."""
    parts = reference.split(":")
    return parts[6] if reference.startswith("arn:") and len(parts) >= 7 else reference


class CfnTopicPolicy(CloudFormationModel):
    """AWS::SNS::TopicPolicy: the policy set on each topic."""

    # moto files a model under the service its module names.
    __module__ = "moto.sns.cfn_shim"

    def __init__(self, topics):
        self.topics = topics
        self.physical_resource_id = ",".join(topics)

    @staticmethod
    def cloudformation_name_type():
        return ""

    @staticmethod
    def cloudformation_type():
        return "AWS::SNS::TopicPolicy"

    @classmethod
    def has_cfn_attr(cls, attr):
        return False

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        props = cloudformation_json["Properties"]
        backend = sns_backends[account_id][region_name]
        policy = props["PolicyDocument"]
        for topic in props["Topics"]:
            backend.set_topic_attribute(topic, "Policy", policy if isinstance(policy, str) else json.dumps(policy))
        return cls(props["Topics"])


class CfnSubscription(CloudFormationModel):
    """AWS::SNS::Subscription: Subscribe, then its attributes."""

    __module__ = "moto.sns.cfn_shim"

    def __init__(self, arn):
        self.physical_resource_id = arn

    @staticmethod
    def cloudformation_name_type():
        return ""

    @staticmethod
    def cloudformation_type():
        return "AWS::SNS::Subscription"

    @classmethod
    def has_cfn_attr(cls, attr):
        return attr == "Arn"

    def get_cfn_attribute(self, attribute_name):
        return self.physical_resource_id

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        props = cloudformation_json["Properties"]
        backend = sns_backends[account_id][region_name]
        subscription = backend.subscribe(props["TopicArn"], props["Endpoint"], props["Protocol"])
        for name in ("FilterPolicy", "FilterPolicyScope", "RawMessageDelivery", "RedrivePolicy", "DeliveryPolicy"):
            if name in props:
                value = props[name]
                backend.set_subscription_attributes(
                    subscription.arn, name, value if isinstance(value, str) else json.dumps(value)
                )
        return cls(subscription.arn)


class CfnEventInvokeConfig(CloudFormationModel):
    """AWS::Lambda::EventInvokeConfig: PutFunctionEventInvokeConfig."""

    __module__ = "moto.awslambda.cfn_shim"

    def __init__(self, function_name):
        self.physical_resource_id = function_name

    @staticmethod
    def cloudformation_name_type():
        return ""

    @staticmethod
    def cloudformation_type():
        return "AWS::Lambda::EventInvokeConfig"

    @classmethod
    def has_cfn_attr(cls, attr):
        return False

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        props = dict(cloudformation_json["Properties"])
        name = _function_name(props.pop("FunctionName"))
        props.pop("Qualifier", None)  # moto keeps one configuration per function
        lambda_backends[account_id][region_name].put_function_event_invoke_config(name, props)
        return cls(name)


if __name__ == "__main__":
    server.main(sys.argv[1:])

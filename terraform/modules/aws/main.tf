# cloudcircuit on AWS: a Lambda that scans spend on a schedule (and when AWS Budgets notifies),
# a DynamoDB table for its state and enforcement journal, and a least-privilege role.
#
# IAM: the action lists below are exactly the AWS operations the adapter calls
# (tests/adapters/aws/test_iam_coverage.py records every call of the test suite through botocore
# hooks and checks both ways: every operation used is granted here, every action granted is used).

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  # Always granted: reading spend and resolving targets (dry-run plans).
  read_actions = [
    "autoscaling:DescribeAutoScalingGroups",
    "ce:GetCostAndUsage",
    "ec2:DescribeInstances",
    "ecs:DescribeServices",
    "ecs:ListClusters",
    "ecs:ListServices",
    "eks:DescribeNodegroup",
    "eks:ListClusters",
    "eks:ListNodegroups",
    "lambda:GetFunctionConcurrency",
    "lambda:ListFunctions",
    "lambda:ListTags",
    "rds:DescribeDBInstances",
  ]

  # Always granted, on the state table only.
  state_actions = [
    "dynamodb:DeleteItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:UpdateItem",
  ]

  # Only with member_role_name: list the organization's accounts and assume the role in each.
  organization_actions = [
    "organizations:ListAccounts",
    "sts:AssumeRole",
  ]

  # Only with enable_enforcement: stop / scale to zero / tag, and put everything back.
  enforce_actions = [
    "autoscaling:CreateOrUpdateTags",
    "autoscaling:DeleteTags",
    "autoscaling:UpdateAutoScalingGroup",
    "ec2:CreateTags",
    "ec2:DeleteTags",
    "ec2:StartInstances",
    "ec2:StopInstances",
    "ecs:UpdateService",
    "eks:TagResource",
    "eks:UntagResource",
    "eks:UpdateNodegroupConfig",
    "lambda:DeleteFunctionConcurrency",
    "lambda:PutFunctionConcurrency",
    "rds:StartDBInstance",
    "rds:StopDBInstance",
    "tag:TagResources",
    "tag:UntagResources",
  ]

  # Not called directly: the Resource Groups Tagging API needs the services' own tagging
  # permissions to tag ECS services, Lambda functions and RDS instances on our behalf.
  rgta_implied_actions = [
    "ecs:TagResource",
    "ecs:UntagResource",
    "lambda:TagResource",
    "lambda:UntagResource",
    "rds:AddTagsToResource",
    "rds:RemoveTagsFromResource",
  ]

  protect_tag_key = "cloudcircuit:protect"
  function_name   = var.name
  log_group_name  = "/aws/lambda/${var.name}"
}

# -- state ------------------------------------------------------------------------------

resource "aws_dynamodb_table" "state" {
  #checkov:skip=CKV_AWS_119:State holds counters, cache keys and resource ids, no secrets; AWS-owned key encryption is on and a customer key would add a KMS dependency to every scan.
  name         = "${var.name}-state"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"
  range_key    = "sk"

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "sk"
    type = "S"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }

  deletion_protection_enabled = true
  tags                        = var.tags
}

# -- logs -------------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_158:Logs carry decisions and resource ids, no secrets; encrypted at rest by CloudWatch's own key.
  #checkov:skip=CKV_AWS_338:Retention is the operator's choice (var.log_retention_days); the journal of record lives in DynamoDB.
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

# -- role -------------------------------------------------------------------------------

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = "${var.name}-function"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "read" {
  statement {
    sid       = "ReadSpendAndResolveTargets"
    actions   = local.read_actions
    resources = ["*"] # Cost Explorer and the Describe/List calls have no resource-level permissions
  }

  statement {
    sid       = "StateTable"
    actions   = local.state_actions
    resources = [aws_dynamodb_table.state.arn]
  }

  statement {
    sid       = "OwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }
}

resource "aws_iam_role_policy" "read" {
  name   = "read"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.read.json
}

data "aws_iam_policy_document" "organization" {
  count = var.member_role_name == null ? 0 : 1

  statement {
    sid       = "ListMembers"
    actions   = [for a in local.organization_actions : a if a != "sts:AssumeRole"]
    resources = ["*"] # ListAccounts has no resource-level permissions
  }

  statement {
    sid       = "AssumeMemberRole"
    actions   = [for a in local.organization_actions : a if a == "sts:AssumeRole"]
    resources = ["arn:${data.aws_partition.current.partition}:iam::*:role/${coalesce(var.member_role_name, "none")}"]
  }
}

resource "aws_iam_role_policy" "organization" {
  count  = var.member_role_name == null ? 0 : 1
  name   = "organization"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.organization[0].json
}

data "aws_iam_policy_document" "enforce" {
  count = var.enable_enforcement ? 1 : 0

  statement {
    sid       = "EnforceOnUnprotectedResources"
    actions   = local.enforce_actions
    resources = ["*"] # targets are chosen at run time by tag selectors, never by ARN
    condition {
      test     = "StringNotEqualsIfExists"
      variable = "aws:ResourceTag/${local.protect_tag_key}"
      values   = ["true"]
    }
  }

  statement {
    sid       = "TagThroughTaggingApi"
    actions   = local.rgta_implied_actions
    resources = ["*"]
    condition {
      test     = "StringNotEqualsIfExists"
      variable = "aws:ResourceTag/${local.protect_tag_key}"
      values   = ["true"]
    }
  }
}

resource "aws_iam_role_policy" "enforce" {
  count  = var.enable_enforcement ? 1 : 0
  name   = "enforce"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.enforce[0].json
}

# -- function ---------------------------------------------------------------------------

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_117:The function only calls public AWS APIs; a VPC would need NAT or seven interface endpoints for no isolation gain.
  #checkov:skip=CKV_AWS_116:Invocations are schedules and budget notifications; a failed scan is logged, counted by the circuit breaker and retried by the next schedule.
  #checkov:skip=CKV_AWS_272:Code signing is an organization-wide choice; the package is built reproducibly by `make lambda-zip`.
  #checkov:skip=CKV_AWS_173:Environment variables hold a file path, a table URL and a boolean, no secrets.
  function_name                  = local.function_name
  role                           = aws_iam_role.this.arn
  runtime                        = var.lambda_runtime
  handler                        = "cloudcircuit_aws.handler.handler"
  filename                       = var.lambda_zip_path
  source_code_hash               = filebase64sha256(var.lambda_zip_path)
  memory_size                    = var.memory_size
  timeout                        = var.timeout_seconds
  reserved_concurrent_executions = 1 # one scan at a time: no two runs enforce concurrently

  environment {
    variables = {
      CLOUDCIRCUIT_POLICY  = var.policy_path
      CLOUDCIRCUIT_STATE   = "dynamodb://${aws_dynamodb_table.state.name}?region=${data.aws_region.current.name}"
      CLOUDCIRCUIT_ENFORCE = var.enable_enforcement ? "true" : "false"
    }
  }

  tracing_config {
    mode = "PassThrough"
  }

  depends_on = [aws_cloudwatch_log_group.this]
  tags       = var.tags
}

# -- triggers ---------------------------------------------------------------------------

resource "aws_cloudwatch_event_rule" "schedule" {
  name                = "${var.name}-scan"
  description         = "Runs the cloudcircuit scan."
  schedule_expression = var.schedule_expression
  tags                = var.tags
}

resource "aws_cloudwatch_event_target" "schedule" {
  rule = aws_cloudwatch_event_rule.schedule.name
  arn  = aws_lambda_function.this.arn
}

resource "aws_lambda_permission" "schedule" {
  statement_id  = "AllowEventBridgeSchedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.schedule.arn
}

resource "aws_sns_topic_subscription" "budgets" {
  count     = var.budgets_sns_topic_arn == null ? 0 : 1
  topic_arn = var.budgets_sns_topic_arn
  protocol  = "lambda"
  endpoint  = aws_lambda_function.this.arn
}

resource "aws_lambda_permission" "budgets" {
  count         = var.budgets_sns_topic_arn == null ? 0 : 1
  statement_id  = "AllowBudgetsTopic"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this.function_name
  principal     = "sns.amazonaws.com"
  source_arn    = var.budgets_sns_topic_arn
}

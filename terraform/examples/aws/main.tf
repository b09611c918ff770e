# Deploy cloudcircuit in one account: hourly dry-run scans, plus a scan whenever AWS Budgets
# notifies the topic below. Build the package first: `make lambda-zip POLICY=path/to/policy.yaml`.
#
#   terraform init && terraform apply -var 'budgets_topic_arn=arn:aws:sns:...'
#
# Turn enforcement on only after reading a few dry-run plans: -var enable_enforcement=true.

terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

variable "region" {
  type        = string
  description = "Region to deploy into (Cost Explorer itself is global)."
  default     = "us-east-1"
}

variable "budgets_topic_arn" {
  type        = string
  description = "SNS topic your AWS Budgets notify (null: schedule only)."
  default     = null
}

variable "enable_enforcement" {
  type        = bool
  description = "Let the function stop, scale and tag resources (false: dry-run)."
  default     = false
}

provider "aws" {
  region = var.region
}

module "cloudcircuit" {
  source = "../../modules/aws"

  name                  = "cloudcircuit"
  lambda_zip_path       = "${path.root}/../../../dist/cloudcircuit-aws-lambda.zip"
  schedule_expression   = "rate(1 hour)"
  enable_enforcement    = var.enable_enforcement
  budgets_sns_topic_arn = var.budgets_topic_arn
  log_retention_days    = 90
  tags = {
    app = "cloudcircuit"
  }
}

output "function_name" {
  description = "Invoke it with {\"action\": \"scan\"} to run a scan now."
  value       = module.cloudcircuit.function_name
}

output "state_table_name" {
  description = "Where the journal lives (for cloudcircuit restore --state dynamodb://NAME)."
  value       = module.cloudcircuit.state_table_name
}

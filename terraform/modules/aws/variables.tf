variable "name" {
  type        = string
  description = "Name prefix of every resource (function, role, table, rule, log group)."
  default     = "cloudcircuit"
}

variable "lambda_zip_path" {
  type        = string
  description = "Path of the deployment package built by `make lambda-zip` (dist/cloudcircuit-aws-lambda.zip)."
}

variable "lambda_runtime" {
  type        = string
  description = "Lambda Python runtime; must match the Python version the zip was built for."
  default     = "python3.11"
}

variable "policy_path" {
  type        = string
  description = "Path of the cloudcircuit policy file inside the package (CLOUDCIRCUIT_POLICY)."
  default     = "policy.yaml"
}

variable "schedule_expression" {
  type        = string
  description = "EventBridge schedule of the scan, e.g. rate(1 hour) or cron(0 6 * * ? *)."
  default     = "rate(1 hour)"
}

variable "enable_enforcement" {
  type        = bool
  description = "Grant the mutating actions (stop, scale, tag) and set CLOUDCIRCUIT_ENFORCE=true. False: read-only dry-run scans."
  default     = false
}

variable "budgets_sns_topic_arn" {
  type        = string
  description = "SNS topic AWS Budgets notifies; when set, the function is subscribed and scans the notified budget. Null: no subscription."
  default     = null
}

variable "member_role_name" {
  type        = string
  description = "Role assumed in each member account for organization-wide enforcement (also grants organizations:ListAccounts). Null: own account only."
  default     = null
}

variable "log_retention_days" {
  type        = number
  description = "Days the function's CloudWatch logs are kept."
  default     = 30
}

variable "memory_size" {
  type        = number
  description = "Memory of the function in MB."
  default     = 512
}

variable "timeout_seconds" {
  type        = number
  description = "Timeout of one invocation in seconds."
  default     = 300
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource the module creates."
  default     = {}
}

output "function_name" {
  description = "Name of the cloudcircuit Lambda function (invoke it with {\"action\": \"scan\"})."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "ARN of the cloudcircuit Lambda function."
  value       = aws_lambda_function.this.arn
}

output "role_arn" {
  description = "ARN of the function's execution role (least privilege; mutating actions only with enable_enforcement)."
  value       = aws_iam_role.this.arn
}

output "state_table_name" {
  description = "DynamoDB table holding breaker state, caches and the enforcement journal (state URL dynamodb://NAME)."
  value       = aws_dynamodb_table.state.name
}

output "schedule_rule_arn" {
  description = "ARN of the EventBridge rule that runs the scheduled scan."
  value       = aws_cloudwatch_event_rule.schedule.arn
}

output "log_group_name" {
  description = "CloudWatch log group of the function."
  value       = aws_cloudwatch_log_group.this.name
}

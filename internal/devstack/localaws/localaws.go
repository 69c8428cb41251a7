// Package localaws holds the region and account the local stack reports
// when none is configured. It is the one home of these defaults: the
// DynamoDB proxy, the event source mappings, the Lambda runtime, the stack,
// cmd/devstack and internal/dynamotest all use it, so the ARNs one part
// builds match those another part checks.
package localaws

const (
	// Region is reported to functions as AWS_REGION and appears in every
	// ARN the local stack builds.
	Region = "us-east-1"
	// AccountID is 000000000000, the account LocalStack answers with for
	// test credentials
	// (https://docs.localstack.cloud/aws/capabilities/config/credentials),
	// so a local ARN never looks like a real account's.
	AccountID = "000000000000"
)

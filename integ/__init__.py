"""The sample S3 -> Lambda -> DynamoDB app, its integ-runner test, the snapshot check and the local demo."""

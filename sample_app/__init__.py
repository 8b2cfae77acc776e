"""The sample app: S3 -> TypeScript, Python and Go functions -> DynamoDB, logs shipped to Loki."""

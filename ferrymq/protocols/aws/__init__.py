"""What every AWS API FerryMQ speaks shares (query forms, XML replies, errors, Signature V4)."""
